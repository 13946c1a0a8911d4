"""Numba kernels of the flag tests (:mod:`workbench.perception._qc`): one pass per zone block.

Each takes C-ordered float64 rows (a zone's sensors × time steps), runs without the GIL and
never modifies its input. The zone-mate kernels walk the time axis once and keep a zone's
few rows in cache: no ``(sensor, time)`` temporaries besides their outputs.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["others_mean", "spike_mask", "stands_out"]


@numba.njit(cache=True, nogil=True)
def _others_mean(v, w):  # pragma: no cover - compiled
    n, n_t = v.shape
    mean = np.empty((n, n_t))
    cnt = np.empty((n, n_t), dtype=np.int32)
    for t in range(n_t):
        s = 0.0
        sw = 0.0
        c = 0
        for i in range(n):
            x = v[i, t]
            if not np.isnan(x):
                s += w[i] * x
                sw += w[i]
                c += 1
        for i in range(n):
            x = v[i, t]
            so, swo, co = s, sw, c
            if not np.isnan(x):
                so = s - w[i] * x
                swo = sw - w[i]
                co = c - 1
            cnt[i, t] = co
            mean[i, t] = so / swo if co > 0 and swo > 0 else np.nan
    return mean, cnt


def others_mean(v: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the *other* rows at each step (NaN-aware, weighted by ``w`` per row) and how many
    other rows report there (int32)."""
    v = np.ascontiguousarray(v, dtype=np.float64)
    w = np.ones(v.shape[0]) if w is None else np.ascontiguousarray(np.ravel(w), dtype=np.float64)
    return _others_mean(v, w)


@numba.njit(cache=True, nogil=True)
def _spike_mask(z_zone, z_own, n_others, n_min, spike_z, own_z):  # pragma: no cover - compiled
    n, n_t = z_zone.shape
    out = np.zeros((n, n_t), dtype=np.bool_)
    for t in range(n_t):
        sa = 0.0  # Σ |z_own| and Σ z_own over the rows that have them
        so = 0.0
        co = 0
        for i in range(n):
            b = z_own[i, t]
            if not np.isnan(b):
                sa += abs(b)
                so += b
                co += 1
        for i in range(n):
            a = z_zone[i, t]
            b = z_own[i, t]
            if not (abs(a) >= spike_z and abs(b) >= own_z and np.sign(a) == np.sign(b)):
                continue
            if n_others[i, t] < n_min:  # too few zone-mates report: no test
                continue
            # stands out: |z_own| above the others' mean |z_own| (the mates' z_zone mirror a spike)
            if co > 1 and not abs(b) > (sa - abs(b)) / (co - 1):
                continue
            # not shared: the others' mean own z, in the spike's direction, below own_z / 2
            if co > 1 and ((so - b) / (co - 1)) * np.sign(a) >= 0.5 * own_z:
                continue
            out[i, t] = True
    return out


def spike_mask(z_zone: np.ndarray, z_own: np.ndarray, n_others: np.ndarray, n_min: int, spike_z: float,
               own_z: float) -> np.ndarray:
    """Readings with ``|z_zone| ≥ spike_z`` and ``|z_own| ≥ own_z`` of one sign that stand out
    in the zone (``|z_own|`` above the other rows' mean) and are not shared (the other rows'
    mean ``z_own`` in that direction below ``own_z / 2``), where at least ``n_min`` zone-mates
    report."""
    return _spike_mask(np.ascontiguousarray(z_zone), np.ascontiguousarray(z_own), n_others, int(n_min),
                       float(spike_z), float(own_z))


@numba.njit(cache=True, nogil=True)
def _stands_out(v, n_others, n_min):  # pragma: no cover - compiled
    n, n_t = v.shape
    out = np.zeros((n, n_t), dtype=np.bool_)
    for t in range(n_t):
        s = 0.0
        c = 0
        for i in range(n):
            if not np.isnan(v[i, t]):
                s += abs(v[i, t])
                c += 1
        for i in range(n):
            a = abs(v[i, t])
            others = c - (0 if np.isnan(a) else 1)
            out[i, t] = n_others[i, t] < n_min or others == 0 or a > (s - (0.0 if np.isnan(a) else a)) / max(others, 1)
    return out


def stands_out(v: np.ndarray, n_others: np.ndarray, n_min: int) -> np.ndarray:
    """``|v|`` larger than the mean ``|v|`` of the zone's other rows (or fewer than ``n_min``
    zone-mates, or none with a value)."""
    return _stands_out(np.ascontiguousarray(v, dtype=np.float64), n_others, int(n_min))
