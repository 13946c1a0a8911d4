"""Block kernels of perception: every test of one variable in one pass over a zone-complete
``(sensor, time)`` block (see :mod:`workbench.perception._zoned`).

The block is worked zone by zone, so the temporaries are a zone's few rows, never the block:
the peak memory of a stage is its input chunks plus its outputs. No Python loop runs per
sensor; the per-row work is numba (:mod:`~workbench.perception._kernels`) or bottleneck.
The flag kernel lives in :mod:`workbench.perception._qc`.
"""

from __future__ import annotations

import bottleneck as bn
import numba
import numpy as np

from workbench.perception import _kernels as K
from workbench.perception._contrast import slow_residual
from workbench.perception._counts import pearson, poisson_scan
from workbench.perception._qc import flags_block, glog  # the flag kernel (quality_flags)

__all__ = ["glog", "flags_block", "scores_block", "residual", "slot_median", "city_scan_block", "POOL_CLIP"]

#: |z| of one sensor is clipped here before the zone mean (``anomaly_pool: zone``): one sensor
#: with an unflagged fault cannot make its zone anomalous (5 and 8 tried on seeds 100-109)
POOL_CLIP = 5.0


def _zone_index(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(zone labels, row -> zone position) of a block."""
    return np.unique(codes, return_inverse=True)


def _zone_reduce(v: np.ndarray, inv: np.ndarray, n_z: int, how: str) -> np.ndarray:
    """Per-zone nanmean / nansum / nanmedian of rows, shape (n_z, T) (all-NaN -> NaN)."""
    out = np.full((n_z, v.shape[-1]), np.nan)
    with np.errstate(all="ignore"):
        for k in range(n_z):
            rows = v[inv == k]
            if how == "median":
                out[k] = bn.nanmedian(rows, axis=0)
            elif how == "sum":
                out[k] = np.where(np.isnan(rows).all(axis=0), np.nan, bn.nansum(rows, axis=0))
            else:
                out[k] = bn.nanmean(rows, axis=0)
    return out


def _poisson_scores(x: np.ndarray, bad_mask: np.ndarray, *, codes: np.ndarray, slot: np.ndarray, steps_per_hour: int,
                    scales: tuple[int, ...], effect_window: int, gain: float = 1.0,
                    direction: str = "both") -> tuple[np.ndarray, ...]:
    """z, score and effect (float32) of counts per hour (``anomaly_model: poisson``), pooled per zone.

    The zone's count per step is scanned against its expectation (the zone's mean count per
    sensor in the step's hour of the day type, shrunk towards its overall rate, times the
    sensors reporting) over windows of the scan scales and their doubles (counts are sparse:
    a window that fits the event matters more than for dense signals) with
    :func:`~workbench.perception._counts.poisson_scan` (a signed root log-likelihood ratio,
    in standard-normal units). ``z`` is each sensor's Pearson residual, ``effect``
    the zone's relative excess ``(C − E) / E`` over a centred window of ``4 × effect_window``.
    The score is already times ``gain`` with only the ``direction``'s signs kept.
    """
    c = np.divide(x, steps_per_hour)
    np.round(c, out=c)
    c[bad_mask] = np.nan
    zones, inv = _zone_index(codes)
    n_z = len(zones)
    cz = _zone_reduce(c, inv, n_z, "sum")
    nz = np.zeros_like(cz)
    for k in range(n_z):
        nz[k] = (~np.isnan(c[inv == k])).sum(axis=0)
    group = slot // max(1, steps_per_hour)
    n_g = int(group.max()) + 1 if group.size else 1
    lam = np.empty((n_z, n_g))
    for k in range(n_z):
        ok = ~np.isnan(cz[k])
        tot_c = np.bincount(group[ok], weights=cz[k][ok], minlength=n_g)
        tot_n = np.bincount(group[ok], weights=nz[k][ok], minlength=n_g)
        mean = tot_c.sum() / max(tot_n.sum(), 1.0)
        lam[k] = (tot_c + 4.0 * mean) / (tot_n + 4.0)  # shrunk to the zone's mean rate: no zero expectation
    ez = lam[:, group] * nz
    ez[nz == 0] = np.nan
    scales = tuple(sorted(set(scales) | {2 * k for k in scales}))  # octaves: +0.04 F1 on seeds 100-109
    # not rescaled for overdispersion: at small counts the MAD of a discrete statistic overstates
    # its spread (seeds 100-109: services F1 0.58 rescaled, 0.62 not)
    score_z = poisson_scan(cz, ez, scales, overdispersion=False)
    w = 4 * effect_window
    with np.errstate(all="ignore"):
        csum = bn.move_sum(np.nan_to_num(cz), w, min_count=1, axis=-1)
        esum = bn.move_sum(np.nan_to_num(ez), w, min_count=1, axis=-1)
        shift = w // 2
        rel = (csum - esum) / esum
        rel = np.concatenate([rel[:, shift:], np.full((n_z, shift), np.nan)], axis=-1)
    # numba, straight to float32 (the values of the NumPy expressions' casts, no full-size float64)
    z = pearson(c, lam, inv, group)
    score = K.expand(score_z, inv, c, gain=gain, direction=direction)  # NaN where the count is
    effect = K.expand(rel, inv, c)
    return z, score, effect


@numba.njit(cache=True, nogil=True)
def _slot_median(y, order, bounds):  # pragma: no cover - compiled
    out = np.empty((y.shape[0], bounds.shape[0] - 1))
    buf = np.empty(order.shape[0])
    for i in range(y.shape[0]):
        K.row_slot_medians(y[i], order, bounds, buf, out[i])
    return out


def slot_median(y: np.ndarray, slot: np.ndarray, n_slots: int) -> np.ndarray:
    """Median of each row per ``slot`` (NaN-aware; NaN for an empty slot), shape (rows, n_slots).

    The profile: one numba pass gathering each slot's values (the slot order is shared by all
    rows) — the same values as flox's ``groupby_reduce(func="nanmedian")`` (tested), ~8× faster
    on a year of 15-minute rows (flox partitions the whole block).
    """
    return _slot_median(np.ascontiguousarray(y, dtype=np.float64), *K.group_members(slot, n_slots))


def residual(x: np.ndarray, bits: np.ndarray, *, slot: np.ndarray, n_slots: int, transform: str, bad: int) -> np.ndarray:
    """Departure of each row from its profile (:func:`slot_median`), bad readings NaN."""
    return K.slot_center(glog(x, transform), bits, bad, slot, n_slots)  # one numba pass per row


def scores_block(x: np.ndarray, *qc: np.ndarray, codes: np.ndarray, slot: np.ndarray, n_slots: int, transform: str,
                 floor: float, scales: tuple[int, ...], effect_window: int, flag_params: dict | None = None,
                 bad: int = 0, direction: str = "both", model: str = "robust", pool: str = "sensor",
                 steps_per_hour: int = 4, gain: float = 1.0, contrast_window: int = 0,
                 city: bool = False, clip: float = POOL_CLIP) -> tuple[np.ndarray, ...]:
    """Robust z, scan score and effect (float32) of a block, and its flags when none are given.

    The profile is each row's median per ``slot`` (:func:`slot_median`: one numba pass for
    all rows), the residual is scaled by the row's MAD (``z``), the score is the
    multi-scale scan of ``z``, the effect the 1-hour moving median of the residual.
    ``pool="zone"`` scans the zone's mean ``z`` instead (events are zone-wide: the sensors'
    own noise averages out, the shared drivers do not — the scan's recalibration sees them) and
    takes the effect from the zone's median residual; ``"both"`` keeps the stronger of the
    sensor's and the zone's scan. ``model="poisson"`` (counts) uses :func:`_poisson_scores`.
    The score is multiplied by ``gain`` (the detector's threshold over the variable's own
    ``anomaly_threshold``), so one threshold serves every variable. With ``contrast_window``
    (robust model, zone pooling) a fourth output carries each row's zone's slow residual
    (:func:`~workbench.perception._contrast.slow_residual`, not masked by the row's gaps),
    the input of the zone-against-city contrast (:func:`~workbench.perception._contrast.contrast`).
    With ``city`` (zone pooling) the scan is left to :func:`city_scan_block` (NaN here) and a
    last output holds each zone's mean ``z`` in the zone's first row (NaN in the others), so
    a median along ``sensor`` is the median over the city's zones.
    """
    x = np.asarray(x, dtype=np.float64)
    slow = rep = None
    bits = np.asarray(qc[0]) if qc else flags_block(x, codes=codes, **(flag_params or {}))
    if model == "poisson":
        z, score, effect = _poisson_scores(x, (bits & bad) != 0, codes=codes, slot=slot, steps_per_hour=steps_per_hour,
                                           scales=scales, effect_window=effect_window, gain=gain, direction=direction)
    else:
        r = residual(x, bits, slot=slot, n_slots=n_slots, transform=transform, bad=bad)
        with np.errstate(all="ignore"):
            den = np.fmax(K.row_mad(r), floor)
        if pool == "sensor":
            effect = K.centered_median(r, effect_window, min_count=max(1, effect_window // 2))
            z = np.divide(r, den, out=r)  # in place: r is not needed any more
            score = K.scan_max(z, scales)
        else:
            zones, inv = _zone_index(codes)
            # numba kernels (K.scale_pool, K.zone_median, K.expand): the values of the
            # bottleneck/NumPy zone reductions and np.where(valid, ...[inv], nan) without
            # full-size float64 temporaries
            rbar = K.zone_median(r, inv, len(zones))
            if pool == "zone":  # z straight to float32 with its zone means (|z| of one sensor at most ``clip``)
                z, zbar = K.scale_pool(r, den, inv, len(zones), clip)
                del r
            else:
                z = np.divide(r, den, out=r)
                zbar = K.zone_mean_clipped(z, inv, len(zones), clip)  # |z| of one sensor at most ``clip`` (POOL_CLIP)
            fast = K.centered_median(rbar, effect_window, min_count=max(1, effect_window // 2))
            effect = K.expand(fast, inv, z)
            if contrast_window:  # the zone's slow residual, for the city background (_contrast)
                slow = K.expand(slow_residual(rbar, contrast_window), inv)
            if pool == "zone":  # scan, gain and direction in one pass to float32
                if city:
                    rep = np.full(z.shape, np.nan, dtype=np.float32)
                    rep[_first_rows(inv, len(zones))] = zbar
                    score = np.full(z.shape, np.nan, dtype=np.float32)
                else:
                    score = K.expand(K.scan_max(zbar, scales), inv, z, gain=gain, direction=direction)
            else:
                valid = ~np.isnan(z)
                score = np.full(z.shape, np.nan) if city else np.where(valid, K.scan_max(zbar, scales)[inv], np.nan)
                if city:
                    rep = np.full(z.shape, np.nan, dtype=np.float32)
                    rep[_first_rows(inv, len(zones))] = zbar
                own = K.scan_max(z, scales)
                score = np.where(np.abs(own) > np.abs(score), own, score)
    if score.dtype != np.float32:
        score = _finish(score, gain, direction)
    effect = effect.astype(np.float32, copy=False)
    out = (z.astype(np.float32, copy=False), score, effect) + ((slow,) if contrast_window else ()) + ((rep,) if city else ())
    return out if qc else (bits, *out)


def _finish(score: np.ndarray, gain: float, direction: str) -> np.ndarray:
    """The score times ``gain`` (float32); only departures of the given sign kept (``anomaly_direction``)."""
    return K.expand(score, gain=gain, direction=direction)  # one pass (numba)


def _first_rows(inv: np.ndarray, n_z: int) -> np.ndarray:
    """The first row of each zone of a block (the same sensor whatever the chunking)."""
    return np.array([np.flatnonzero(inv == k)[0] for k in range(n_z)], dtype=np.int64)


def city_scan_block(rep: np.ndarray, z: np.ndarray, city: np.ndarray, *, codes: np.ndarray, scales: tuple[int, ...],
                    gain: float = 1.0, direction: str = "both") -> np.ndarray:
    """Scan score (float32) of each zone's mean ``z`` minus the city's (``anomaly_city``).

    ``rep`` holds each zone's mean ``z`` in its first row (:func:`scores_block` with
    ``city=True``), ``city`` the median over the city's zones at each step (every row alike).
    What every zone shares at once — rain slowing traffic, washing NO2 out, keeping people
    in; a day type's profile missing a shared swing — cancels; an event in a few zones does
    not move the median. NaN where the row's own ``z`` is NaN.
    """
    zones, inv = _zone_index(codes)
    first = _first_rows(inv, len(zones))
    with np.errstate(invalid="ignore"):
        d = rep[first].astype(np.float64) - np.asarray(city, dtype=np.float64)[first]
    return K.expand(K.scan_max(d, scales), inv, z, gain=gain, direction=direction)  # one pass to float32

