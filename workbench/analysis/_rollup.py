"""Fused sensor → zone kernel: one pass over the readings, sums and counts per zone.

Measured on a (1,429 sensors × 35,040 steps) block: flox's grouped ``nansum`` along the
sensor axis, with the ``where``/``notnull`` temporaries around it, costs several full-size
copies (each page-faulted on this kind of VM); this kernel reads each reading once and
writes only the (zone × time) result. Each sensor's row is added to its zone's row with an
unsigned time index (a vectorised loop: 0.05 s against 0.13 s with a signed one and a
0.025 s ``np.add.reduce``, one thread). With dask one task adds a *group* of consecutive
sensor chunks into one partial (``nogil``, so the threads overlap), and the partials are
added in a tree. The partial (2 × zone × time) is about as big as a 24 MB chunk of a year
when every chunk spans every zone (the reference city assigns sensors round-robin), so a
group holds several chunks: the partials written and re-read are a fraction of the input.
"""

from __future__ import annotations

import math

import dask.array as dsa
import numba
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

__all__ = ["zone_sum_count"]

#: a group of sensor chunks holds at least this many times the partial's bytes of readings
_GROUP_RATIO = 4
#: ...but the sensor chunks make at least this many groups (both threads busy, balanced)
_MIN_GROUPS = 4


@numba.njit(cache=True, nogil=True)
def _sum_count_qc(x, qc, bad, zi, out):  # pragma: no cover - numba
    ns, nt = x.shape
    for i in range(ns):
        s, c, row, q = out[0, zi[i]], out[1, zi[i]], x[i], qc[i]
        for t in range(np.uint64(nt)):  # unsigned: no wraparound check, so LLVM vectorises
            v = row[t]
            ok = (v == v) & ((q[t] & bad) == 0)
            s[t] += v if ok else 0.0
            c[t] += 1.0 if ok else 0.0


@numba.njit(cache=True, nogil=True)
def _sum_count(x, zi, out):  # pragma: no cover - numba
    ns, nt = x.shape
    for i in range(ns):
        s, c, row = out[0, zi[i]], out[1, zi[i]], x[i]
        for t in range(np.uint64(nt)):
            v = row[t]
            ok = v == v
            s[t] += v if ok else 0.0
            c[t] += 1.0 if ok else 0.0


def _add_block(out, x, qc, zi, bad):
    x = np.ascontiguousarray(x, dtype=np.float64)
    if qc is None:
        _sum_count(x, zi, out)
    else:
        _sum_count_qc(x, np.ascontiguousarray(qc, dtype=np.uint8), np.uint8(bad), zi, out)


def _numpy(x, qc, zi, nz, bad):
    out = np.zeros((2, nz, x.shape[-1]))
    _add_block(out, x, qc, zi, bad)
    return out


def _group(xs, qcs, zis, nz, bad):
    """Sums and counts of a group of sensor blocks, ``(1, 2, nz, time)``."""
    out = np.zeros((2, nz, xs[0].shape[-1]))
    for k, x in enumerate(xs):
        _add_block(out, x, None if qcs is None else qcs[k], zis[k], bad)
    return out[None]


def _groups(sizes: tuple[int, ...], nz: int) -> list[list[int]]:
    """Consecutive sensor chunks in groups of ≥ ``_GROUP_RATIO`` × the partial's bytes (a
    sensor row is as long as a zone row), at least ``_MIN_GROUPS`` groups when there are."""
    nb = len(sizes)
    per = max(1, math.ceil(_GROUP_RATIO * 2 * nz / max(1, max(sizes))))  # chunks per group
    n = min(nb, max(math.ceil(nb / per), _MIN_GROUPS))
    return [[int(i) for i in g] for g in np.array_split(np.arange(nb), n)]


def zone_sum_count(x, qc, zi: np.ndarray, nz: int, bad: int = 0xFF):
    """Sums and counts of valid readings per zone: array ``(2, nz, time)``.

    ``x`` (sensor × time, numpy or dask), ``qc`` the uint8 flags or ``None``, ``zi`` the
    zone index of each sensor (numpy), ``bad`` the flag bits that exclude a reading.
    """
    zi = np.asarray(zi, dtype=np.int64)
    if not isinstance(x, dsa.Array) and not isinstance(qc, dsa.Array):
        return _numpy(np.asarray(x), None if qc is None else np.asarray(qc), zi, nz, bad)
    x = dsa.asarray(x)
    deps = [x]
    if qc is not None:
        qc = dsa.asarray(qc).rechunk(x.chunks)
        deps.append(qc)
    sizes = x.chunks[0]
    edges = np.r_[0, np.cumsum(sizes)]
    groups = _groups(sizes, nz)
    name = "zone-sum-count-" + tokenize(x, qc, zi, nz, bad, groups)
    xk, qk = x.__dask_keys__(), None if qc is None else qc.__dask_keys__()
    dsk = {}
    for g, members in enumerate(groups):
        zis = [zi[edges[i]:edges[i + 1]] for i in members]
        for j in range(len(x.chunks[1])):
            dsk[(name, g, 0, 0, j)] = (
                _group, [xk[i][j] for i in members], None if qk is None else [qk[i][j] for i in members], zis, nz, bad,
            )
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    parts = dsa.Array(graph, name, chunks=((1,) * len(groups), (2,), (nz,), x.chunks[1]), dtype=np.float64,
                      meta=np.empty((0, 0, 0, 0), dtype=np.float64))
    # partials added in place, eight at a time: ``.sum(axis=0)`` would copy each partial
    # twice more (its per-block sum, then the concatenation of its group)
    out = dsa.reduction(
        parts, chunk=_keep, combine=_add, aggregate=_add, axis=0, keepdims=True, concatenate=False,
        split_every=8, dtype=np.float64, meta=np.empty((0, 0, 0, 0), dtype=np.float64),
    )
    return out[0]


def _keep(x, axis=None, keepdims=True):
    return x


def _add(parts, axis=None, keepdims=True):
    """Sum of a group of partials (a list, possibly nested), into a copy of the first."""
    flat = list(_leaves(parts))
    out = np.array(flat[0], dtype=np.float64, copy=True)
    for p in flat[1:]:
        out += p
    return out


def _leaves(parts):
    if isinstance(parts, (list, tuple)):
        for p in parts:
            yield from _leaves(p)
    else:
        yield parts
