"""Fused sensor → zone kernel: one pass over the readings, sums and counts per zone.

Measured on a (1,429 sensors × 35,040 steps) block: flox's grouped ``nansum`` along the
sensor axis, with the ``where``/``notnull`` temporaries around it, costs several full-size
copies (each page-faulted on this kind of VM); this kernel reads each reading once and
writes only the (zone × time) result. Each sensor's row is added to its zone's row with an
unsigned time index (a vectorised loop: 0.05 s against 0.13 s with a signed one and a
0.025 s ``np.add.reduce``, one thread). With dask it runs per sensor chunk (``nogil``, so the
threads overlap) and the partial sums are added in a tree.
"""

from __future__ import annotations

import dask.array as dsa
import numba
import numpy as np

__all__ = ["zone_sum_count"]


@numba.njit(cache=True, nogil=True)
def _sum_count_qc(x, qc, bad, zi, nz):  # pragma: no cover - numba
    ns, nt = x.shape
    out = np.zeros((2, nz, nt))
    for i in range(ns):
        s, c, row, q = out[0, zi[i]], out[1, zi[i]], x[i], qc[i]
        for t in range(np.uint64(nt)):  # unsigned: no wraparound check, so LLVM vectorises
            v = row[t]
            ok = (v == v) & ((q[t] & bad) == 0)
            s[t] += v if ok else 0.0
            c[t] += 1.0 if ok else 0.0
    return out


@numba.njit(cache=True, nogil=True)
def _sum_count(x, zi, nz):  # pragma: no cover - numba
    ns, nt = x.shape
    out = np.zeros((2, nz, nt))
    for i in range(ns):
        s, c, row = out[0, zi[i]], out[1, zi[i]], x[i]
        for t in range(np.uint64(nt)):
            v = row[t]
            ok = v == v
            s[t] += v if ok else 0.0
            c[t] += 1.0 if ok else 0.0
    return out


def _numpy(x, qc, zi, nz, bad):
    x = np.ascontiguousarray(x, dtype=np.float64)
    if qc is None:
        return _sum_count(x, zi, nz)
    return _sum_count_qc(x, np.ascontiguousarray(qc, dtype=np.uint8), np.uint8(bad), zi, nz)


def _block(x, *qc, zi, nz, bad, block_info=None):
    s0, s1 = block_info[0]["array-location"][0]
    return _numpy(x, qc[0] if qc else None, zi[s0:s1], nz, bad)[None]


def zone_sum_count(x, qc, zi: np.ndarray, nz: int, bad: int = 0xFF):
    """Sums and counts of valid readings per zone: array ``(2, nz, time)``.

    ``x`` (sensor × time, numpy or dask), ``qc`` the uint8 flags or ``None``, ``zi`` the
    zone index of each sensor (numpy), ``bad`` the flag bits that exclude a reading.
    """
    zi = np.asarray(zi, dtype=np.int64)
    if not isinstance(x, dsa.Array) and not isinstance(qc, dsa.Array):
        return _numpy(np.asarray(x), None if qc is None else np.asarray(qc), zi, nz, bad)
    x = dsa.asarray(x)
    args = [x]
    if qc is not None:
        args.append(dsa.asarray(qc).rechunk(x.chunks))
    nb = len(x.chunks[0])
    parts = dsa.map_blocks(
        _block, *args, zi=zi, nz=nz, bad=bad, new_axis=[1, 2], dtype=np.float64,
        chunks=((1,) * nb, (2,), (nz,), x.chunks[1]),
        meta=np.empty((0, 0, 0, 0), dtype=np.float64),
    )
    # partials added in place, eight at a time: ``.sum(axis=0)`` would copy each 22 MB partial
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
