"""Block kernels of perception: every test of one variable in one pass over a zone-complete
``(sensor, time)`` block (see :mod:`workbench.perception._zoned`).

The block is worked zone by zone, so the temporaries are a zone's few rows, never the block:
the peak memory of a stage is its input chunks plus its outputs. No Python loop runs per
sensor; the per-row work is numba (:mod:`~workbench.perception._kernels`) or bottleneck.
"""

from __future__ import annotations

import bottleneck as bn
import numpy as np

from workbench.perception import _kernels as K
from workbench.perception._contrast import slow_residual
from workbench.perception._counts import poisson_scan

__all__ = ["glog", "flags_block", "scores_block", "residual", "POOL_CLIP"]

#: |z| of one sensor is clipped here before the zone mean (``anomaly_pool: zone``): one sensor
#: with an unflagged fault cannot make its zone anomalous (5 and 8 tried on seeds 100-109)
POOL_CLIP = 5.0


def glog(x: np.ndarray, kind: str) -> np.ndarray:
    """The ``qc_transform`` scale of rows of ``x`` (see :func:`workbench.perception._common.transform`)."""
    if kind == "linear":
        return x.astype(np.float64, copy=True)
    if kind == "sqrt":
        return np.sqrt(np.clip(x, 0, None))
    with np.errstate(all="ignore"):
        pos = np.where(x > 0, x, np.nan)
        m = K.row_median(pos) if x.shape[-1] else np.ones((x.shape[0], 1))
        c = np.where(m > 0, 0.05 * m, 1.0)
        return np.log1p(np.clip(x, 0, None) / c)


def _others_mean(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the other rows at each step (NaN-aware) and how many there are."""
    ok = ~np.isnan(v)
    filled = np.where(ok, v, 0.0)
    tot = filled.sum(axis=0)[None, :]
    cnt = ok.sum(axis=0)[None, :]
    others = cnt - ok
    with np.errstate(all="ignore"):
        mean = np.where(others > 0, (tot - filled) / np.maximum(others, 1), np.nan)
    return mean, others


def _local_z(d: np.ndarray, window: int, floor: float) -> np.ndarray:
    """Robust z of each reading against a centred moving median of its row (noise from Δ²)."""
    with np.errstate(all="ignore"):
        return (d - K.centered_median(d, window)) / np.fmax(K.diff_sigma(d), floor)


def _stands_out(v: np.ndarray, n_others: np.ndarray, n_min: int) -> np.ndarray:
    """|v| larger than the mean |v| of the zone's other sensors (or no buddies to compare with)."""
    a = np.abs(v)
    mean_abs, _ = _others_mean(a)
    with np.errstate(invalid="ignore"):
        return (a > mean_abs) | (n_others < n_min) | np.isnan(mean_abs)


def _zone_flags(x: np.ndarray, *, gap: int, fmin: int, fmax: int, alpha: float, transform: str, n_min: int,
                spike_z: float | None, spike_own_z: float | None, window: int, floor: float, drift_fraction: float | None,
                drift_window: int, drift_min: int, valid_min: float, valid_max: float) -> np.ndarray:
    bits = K.run_flags(x, gap_steps=gap, flat_min=fmin, flat_max=fmax, alpha=alpha)
    y = glog(x, transform)
    y[(bits & (K.GAP | K.FLATLINE)) != 0] = np.nan
    if y.shape[-1]:
        with np.errstate(all="ignore"):
            y -= K.row_median(y)
    buddy, n_others = _others_mean(y)
    has = n_others >= n_min
    d = np.where(has, y - buddy, y)  # the zone's common signal (rhythm, weather, events) cancels
    del buddy
    with np.errstate(invalid="ignore"):
        if spike_z:
            # the reading against the sensor's own level relative to its zone-mates (robust z of
            # the buddy difference), confirmed on its own series and standing out in the zone
            z_zone = _local_z(d, window, floor)
            z_own = _local_z(y, window, floor)
            spike = ((np.abs(z_zone) >= spike_z) & (np.abs(z_own) >= spike_own_z) & (np.sign(z_own) == np.sign(z_zone))
                     & _stands_out(z_zone, n_others, n_min))
            bits |= np.where(spike, np.uint8(K.SPIKE), np.uint8(0))
            del z_zone, z_own, spike
        bits |= np.where((x < valid_min) | (x > valid_max), np.uint8(K.OUT_OF_RANGE), np.uint8(0))
        if drift_fraction:
            usable = ((bits & (K.SPIKE | K.OUT_OF_RANGE)) == 0) & has
            dd = np.where(usable, d, np.nan)
            smooth = K.centered_median(dd, drift_window, min_count=max(1, drift_window // 4))
            if dd.shape[-1]:
                smooth -= K.row_median(dd)
            far = (np.abs(smooth) >= drift_fraction) & _stands_out(smooth, n_others, n_min) & has
            bits |= np.where(K.long_runs(far, drift_min), np.uint8(K.DRIFT), np.uint8(0))
    return bits


def flags_block(x: np.ndarray, *, codes: np.ndarray, dup: np.ndarray | None = None, **params) -> np.ndarray:
    """Flag bits of a zone-complete block (see :func:`workbench.perception.quality_flags`)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape, dtype=np.uint8)
    for c in np.unique(codes):
        rows = np.flatnonzero(codes == c)
        out[rows] = _zone_flags(np.ascontiguousarray(x[rows]), **params)
    if dup is not None and dup.any():
        out[:, dup] |= np.uint8(K.DUPLICATE)
    return out


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
                    scales: tuple[int, ...], effect_window: int) -> tuple[np.ndarray, ...]:
    """z, score and effect of counts per hour (``anomaly_model: poisson``), pooled per zone.

    The zone's count per step is scanned against its expectation (the zone's mean count per
    sensor in the step's hour of the day type, shrunk towards its overall rate, times the
    sensors reporting) over windows of the scan scales and their doubles (counts are sparse:
    a window that fits the event matters more than for dense signals) with
    :func:`~workbench.perception._counts.poisson_scan` (a signed root log-likelihood ratio,
    in standard-normal units). ``z`` is each sensor's Pearson residual, ``effect``
    the zone's relative excess ``(C − E) / E`` over a centred window of ``4 × effect_window``.
    """
    c = np.round(x / steps_per_hour)
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
        mu = lam[inv][:, group]
        z = (c - mu) / np.sqrt(mu)
    valid = ~np.isnan(c)
    score = np.where(valid, score_z[inv], np.nan)
    effect = np.where(valid, rel[inv], np.nan)
    return z, score, effect


def residual(x: np.ndarray, bits: np.ndarray, *, slot: np.ndarray, n_slots: int, transform: str, bad: int) -> np.ndarray:
    """Departure of each row from its profile (median per ``slot``, flox on the block), bad readings NaN."""
    from flox import groupby_reduce

    y = glog(x, transform)
    y[(bits & bad) != 0] = np.nan
    with np.errstate(all="ignore"):
        prof, _ = groupby_reduce(y, slot, func="nanmedian", expected_groups=np.arange(n_slots), axis=-1)
        y -= np.asarray(prof)[:, slot]
    return y


def scores_block(x: np.ndarray, *qc: np.ndarray, codes: np.ndarray, slot: np.ndarray, n_slots: int, transform: str,
                 floor: float, scales: tuple[int, ...], effect_window: int, flag_params: dict | None = None,
                 bad: int = 0, direction: str = "both", model: str = "robust", pool: str = "sensor",
                 steps_per_hour: int = 4, gain: float = 1.0, contrast_window: int = 0) -> tuple[np.ndarray, ...]:
    """Robust z, scan score and effect (float32) of a block, and its flags when none are given.

    The profile is each row's median per ``slot`` (flox ``groupby_reduce`` on the block: one
    call for all rows), the residual is scaled by the row's MAD (``z``), the score is the
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
    """
    x = np.asarray(x, dtype=np.float64)
    slow = None
    bits = np.asarray(qc[0]) if qc else flags_block(x, codes=codes, **(flag_params or {}))
    if model == "poisson":
        z, score, effect = _poisson_scores(x, (bits & bad) != 0, codes=codes, slot=slot, steps_per_hour=steps_per_hour,
                                           scales=scales, effect_window=effect_window)
    else:
        r = residual(x, bits, slot=slot, n_slots=n_slots, transform=transform, bad=bad)
        with np.errstate(all="ignore"):
            z = r / np.fmax(K.row_mad(r), floor)
        if pool == "sensor":
            score = K.scan_max(z, scales)
            effect = K.centered_median(r, effect_window, min_count=max(1, effect_window // 2))
        else:
            zones, inv = _zone_index(codes)
            zbar = _zone_reduce(np.clip(z, -POOL_CLIP, POOL_CLIP), inv, len(zones), "mean")
            valid = ~np.isnan(z)
            score = np.where(valid, K.scan_max(zbar, scales)[inv], np.nan)
            if pool == "both":
                own = K.scan_max(z, scales)
                score = np.where(np.abs(own) > np.abs(score), own, score)
            rbar = _zone_reduce(r, inv, len(zones), "median")
            fast = K.centered_median(rbar, effect_window, min_count=max(1, effect_window // 2))
            effect = np.where(valid, fast[inv], np.nan)
            if contrast_window:  # the zone's slow residual, for the city background (_contrast)
                slow = slow_residual(rbar, contrast_window)[inv].astype(np.float32)
    score = (score * gain).astype(np.float32)
    effect = effect.astype(np.float32)
    if direction != "both":  # only departures of the given sign can be events (registry anomaly_direction)
        keep = score > 0 if direction == "up" else score < 0
        score = np.where(keep | np.isnan(score), score, np.float32(0.0))
    out = (z.astype(np.float32), score, effect) + ((slow,) if contrast_window else ())
    return out if qc else (bits, *out)

