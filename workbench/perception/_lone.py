"""Spike and drift tests for sensors with too few zone-mates: against the other zones.

Where a zone holds fewer than ``min_buddies`` sensors of a system, the buddy tests of
:mod:`workbench.perception._qc` have nothing to compare with. Weather, fronts and the city's
rhythm move every zone; a spike or a drift moves one sensor. So such a sensor is compared
with a *reference*: per step, the median over every other zone (``lone_reference: city``, the
default) or over its adjacent zones (``neighbours``: the city's ``zones`` node; at least two
reporting, else every other zone) of each zone's mean ``qc_transform`` reading (each sensor
centred on its own median first).

The reference is a small summary computed first from per-chunk ``zones × time`` sums
(:func:`lone_reference`, lazy for dask input), and only when a zone lacks mates; its rows (one
per such zone) travel whole to every block with the flag kernel's parameters
(:func:`workbench.perception._zoned.zone_map`), so the blocks stay zone-complete. A lone
sensor's own zone event (outage, heatwave, leak, incident) also departs from the others, so
the tests lean on shape (:func:`short_spikes`, :func:`ramp_runs`): a spike is at most
``lone_spike_steps`` steps long, a drift is a ramp that grows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dask
import dask.array
import numba
import numpy as np
import xarray as xr

from workbench.perception import _kernels as K

__all__ = ["lone_zones", "lone_reference", "loo_median", "short_spikes", "ramp_runs"]


def lone_zones(codes: np.ndarray, min_buddies: int) -> np.ndarray:
    """Zone codes holding fewer than ``min_buddies`` sensors (sorted)."""
    c = codes[codes >= 0]
    zs, n = np.unique(c, return_counts=True)
    return zs[n < int(min_buddies)]


def _centred(x: np.ndarray, transform: str) -> np.ndarray:
    from workbench.perception._qc import glog  # the flag kernel's scale

    y = glog(np.asarray(x, dtype=np.float64), transform)
    if y.shape[-1]:
        with np.errstate(all="ignore"):
            y -= K.row_median(y)
    return y


#: rows of a chunk transformed at a time for the zone sums (temporaries stay a few rows)
SLAB_ROWS = 8


def _zone_sums(x: np.ndarray, codes: np.ndarray, n_zones: int, transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Per zone and step: the sum and count of the centred transformed readings of ``x``
    (``SLAB_ROWS`` rows at a time, added in row order)."""
    x = np.asarray(x)
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    s = np.zeros((int(n_zones), x.shape[-1]))
    c = np.zeros((int(n_zones), x.shape[-1]))
    for a in range(0, x.shape[0], SLAB_ROWS):
        _sums(_centred(x[a:a + SLAB_ROWS], transform), codes[a:a + SLAB_ROWS], s, c)
    return s, c


@numba.njit(cache=True, nogil=True)
def _sums(y, codes, s, c):  # pragma: no cover - compiled
    n, n_t = y.shape
    for i in range(n):
        z = codes[i]
        for t in range(n_t):
            v = y[i, t]
            if not np.isnan(v):
                s[z, t] += v
                c[z, t] += 1.0


@numba.njit(cache=True, nogil=True)
def _loo_median(means, lone):  # pragma: no cover - compiled
    n_z, n_t = means.shape
    out = np.full((lone.shape[0], n_t), np.nan)
    buf = np.empty(n_z)
    for t in range(n_t):
        m = 0
        for z in range(n_z):
            v = means[z, t]
            if not np.isnan(v):
                buf[m] = v
                m += 1
        if m == 0:
            continue
        srt = np.sort(buf[:m])
        for k in range(lone.shape[0]):
            v = means[lone[k], t]
            p = -1  # the position of the zone's own value, removed
            r = m
            if not np.isnan(v):
                p = np.searchsorted(srt, v)
                r = m - 1
            if r == 0:
                continue
            a = (r - 1) // 2
            b = r // 2
            va = srt[a + 1] if (p >= 0 and a >= p) else srt[a]
            vb = srt[b + 1] if (p >= 0 and b >= p) else srt[b]
            out[k, t] = 0.5 * (va + vb)
    return out


def loo_median(means: np.ndarray, lone: np.ndarray) -> np.ndarray:
    """Per step, the NaN-aware median of every row of ``means`` but row ``lone[k]``, for each ``k``
    (one sort per step: ``O(time × zones log zones)``)."""
    return _loo_median(np.ascontiguousarray(means, dtype=np.float64), np.ascontiguousarray(lone, dtype=np.int64))


def _reference(parts: Sequence[tuple[np.ndarray, np.ndarray]], zones: Sequence[str], lone: np.ndarray,
               neighbours: Mapping[str, Sequence[str]] | None) -> np.ndarray:
    """The reference rows of the ``lone`` zones from the per-chunk zone sums and counts."""
    s = sum(p[0] for p in parts)
    cnt = sum(p[1] for p in parts)
    with np.errstate(all="ignore"):
        means = s / np.where(cnt > 0, cnt, np.nan)
    out = loo_median(means, lone)  # every other zone
    if not neighbours:
        return out
    pos = {str(z): i for i, z in enumerate(zones)}
    for k, z in enumerate(lone):  # the adjacent zones where at least two report
        nb = [pos[n] for n in neighbours.get(str(zones[z]), ()) if n in pos and pos[n] != z]
        if len(nb) < 2:
            continue
        rows = means[nb]
        ok = np.isfinite(rows).sum(0) >= 2
        with np.errstate(all="ignore"):
            out[k, ok] = np.nanmedian(rows[:, ok], axis=0)
    return out


def lone_reference(x: xr.DataArray, codes: np.ndarray, zones: Sequence[str], lone: np.ndarray, transform: str,
                   neighbours: Mapping[str, Sequence[str]] | None = None) -> np.ndarray | dask.array.Array:
    """The reference of each zone in ``lone`` (rows, ``(len(lone), time)``; lazy if ``x`` is).

    ``codes`` index ``zones`` (the sorted zone labels); ``neighbours`` maps a zone label to its
    neighbours' labels (``None``: every other zone).
    """
    x = x.transpose("sensor", "time")
    n_z = len(zones)
    keep = codes >= 0
    data = x.data
    if not isinstance(data, dask.array.Array):
        return _reference([_zone_sums(np.asarray(data)[keep], codes[keep], n_z, transform)], zones, lone, neighbours)
    data = data.rechunk({1: -1})
    lo, parts = 0, []
    for blk, n in zip(data.to_delayed().ravel(), data.chunks[0]):  # one zones × time sum per chunk
        k = keep[lo:lo + n]
        parts.append(dask.delayed(_zone_sums, pure=True)(blk if k.all() else blk[k], codes[lo:lo + n][k], n_z, transform))
        lo += n
    ref = dask.delayed(_reference, pure=True)(parts, list(map(str, zones)), lone, dict(neighbours or {}) or None)
    return dask.array.from_delayed(ref, shape=(len(lone), x.sizes["time"]), dtype=np.float64)


@numba.njit(cache=True, nogil=True)
def _side_mean(d, i, a, b):  # pragma: no cover - compiled
    s = 0.0
    c = 0
    for k in range(max(a, 0), min(b, d.shape[1])):
        if not np.isnan(d[i, k]):
            s += d[i, k]
            c += 1
    return s / c if c > 0 else np.nan


@numba.njit(cache=True, nogil=True)
def _short_spikes(z_nb, z_own, d, sigma, spike_z, own_z, low, max_steps, side, up_only):  # pragma: no cover - compiled
    n, n_t = z_nb.shape
    out = np.zeros((n, n_t), dtype=np.bool_)
    for i in range(n):
        t = 0
        while t < n_t:
            a = z_nb[i, t]
            if np.isnan(a) or abs(a) < low:
                t += 1
                continue
            sg = 1.0 if a > 0 else -1.0
            e = t
            while e < n_t and not np.isnan(z_nb[i, e]) and z_nb[i, e] * sg >= low:
                e += 1
            if e - t <= max_steps and (sg > 0 or not up_only):
                # the level before and after the excursion agree (not the edge of a level shift)
                pre = _side_mean(d, i, t - 1 - side, t - 1)
                post = _side_mean(d, i, e + 1, e + 1 + side)
                if not (np.isnan(pre) or np.isnan(post)) and abs(pre - post) < low * sigma[i]:
                    for k in range(t, e):
                        b = z_own[i, k]
                        if z_nb[i, k] * sg >= spike_z and not np.isnan(b) and b * sg >= own_z:
                            out[i, k] = True
            t = e
    return out


def short_spikes(z_nb: np.ndarray, z_own: np.ndarray, d: np.ndarray, sigma: np.ndarray, *, spike_z: float, own_z: float,
                 max_steps: int, side: int, up_only: bool = False) -> np.ndarray:
    """Readings with ``|z_nb| ≥ spike_z`` and ``z_own`` of the same sign at least ``own_z``, inside
    an excursion (a run of ``|z_nb| ≥ spike_z / 2`` of one sign) no longer than ``max_steps``,
    where the mean of ``d`` over ``side`` steps before and after it (one step apart) differs by
    less than ``spike_z / 2`` × the row's ``sigma`` (the edge of a level shift is no spike);
    rises only with ``up_only``."""
    return _short_spikes(np.ascontiguousarray(z_nb, dtype=np.float64), np.ascontiguousarray(z_own, dtype=np.float64),
                         np.ascontiguousarray(d, dtype=np.float64), np.ascontiguousarray(np.ravel(sigma), dtype=np.float64),
                         float(spike_z), float(own_z), 0.5 * float(spike_z), int(max_steps), int(max(1, side)), bool(up_only))


@numba.njit(cache=True, nogil=True)
def _ramp_runs(v, far, min_len, ratio):  # pragma: no cover - compiled
    n, n_t = v.shape
    out = np.zeros((n, n_t), dtype=np.bool_)
    for i in range(n):
        t = 0
        while t < n_t:
            if not far[i, t]:
                t += 1
                continue
            e = t
            while e < n_t and far[i, e]:
                e += 1
            if e - t >= min_len:
                h = (e - t) // 2
                s1 = 0.0
                c1 = 0
                s2 = 0.0
                c2 = 0
                sg = 0.0
                for k in range(t, e):
                    x = v[i, k]
                    if np.isnan(x):
                        continue
                    sg += x
                    if k < t + h:
                        s1 += abs(x)
                        c1 += 1
                    else:
                        s2 += abs(x)
                        c2 += 1
                if c1 > 0 and c2 > 0 and s2 / c2 >= ratio * (s1 / c1):
                    for k in range(t, e):
                        out[i, k] = True
            t = e
    return out


def ramp_runs(v: np.ndarray, far: np.ndarray, *, min_len: int, ratio: float) -> np.ndarray:
    """Runs of ``far`` at least ``min_len`` long whose mean ``|v|`` over their second half is at
    least ``ratio`` times that over their first half (a drift grows; a zone event's plateau
    does not)."""
    return _ramp_runs(np.ascontiguousarray(v, dtype=np.float64), np.ascontiguousarray(far, dtype=np.bool_),
                      int(max(1, min_len)), float(ratio))
