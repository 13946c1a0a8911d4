"""The flag kernel of :func:`workbench.perception.quality_flags`: every test of one variable
in one pass over a zone-complete ``(sensor, time)`` block (see :mod:`workbench.perception._zoned`).

The block is worked zone by zone, so the temporaries are a zone's few rows, never the block.
"""

from __future__ import annotations

import bottleneck as bn
import numpy as np

from workbench.perception import _kernels as K
from workbench.perception._lone import ramp_runs, short_spikes
from workbench.perception._qcnb import (buddy_diff, candidates, drift_bits, mask_and_range, median_residual, moving_median,
                                        residual_at, spike_bits_at, usable_summary)

__all__ = ["glog", "flags_block"]

#: rows of zones short of mates tested together: temporaries stay a few rows, like a zone's
LONE_ROWS = 8


def glog(x: np.ndarray, kind: str) -> np.ndarray:
    """The ``qc_transform`` scale of rows of ``x`` (see :func:`workbench.perception._common.transform`)."""
    if kind == "linear":
        return x.astype(np.float64, copy=True)
    if kind == "sqrt":
        return np.sqrt(np.clip(x, 0, None))
    with np.errstate(all="ignore"):
        if x.shape[-1]:  # the median of the positive readings in row_median's strided subsample
            sub = x[..., ::K._stride(x.shape[-1])]
            m = K.row_median(np.where(sub > 0, sub, np.nan))
        else:
            m = np.ones((x.shape[0], 1))
        c = np.where(m > 0, 0.05 * m, 1.0)
        y = np.maximum(x, 0.0)  # np.clip(x, 0, None), NaN kept; in place from here
        y /= c
        return np.log1p(y, out=y)


def _own_noise(y: np.ndarray, d: np.ndarray, sigma_y: np.ndarray | None = None) -> np.ndarray:
    """Each row's own noise variance, shape (n, 1), from the Δ² noise of its difference to the
    plain mean of the others: ``s_i² = σ_i² + Σ_{j≠i} σ_j² / (n − 1)²``, solved for ``σ²``."""
    n = y.shape[0]
    s2 = K.diff_sigma(d)[:, 0] ** 2
    ok = np.isfinite(s2)
    own = (K.diff_sigma(y) if sigma_y is None else sigma_y)[:, 0] ** 2  # rows without usable buddies: their own Δ² noise
    if ok.sum() >= 3:
        m = ok.sum()
        a = np.full((m, m), 1.0 / (m - 1) ** 2) + np.eye(m) * (1.0 - 1.0 / (m - 1) ** 2)
        sol = np.linalg.solve(a, s2[ok])
        own[ok] = np.fmax(sol, 0.05 * s2[ok])  # never below a twentieth of the pair's noise
    return own[:, None]


def _relative(r: np.ndarray, transform: str) -> np.ndarray:
    """A residual on the transformed scale as a relative departure (``log``: ``x / x̂ − 1``)."""
    return np.expm1(r) if transform == "log" else r


def _local_z(d: np.ndarray, window: int, floor: float, transform: str = "linear",
             sigma: np.ndarray | None = None, inplace: bool = False) -> np.ndarray:
    """Robust z of each reading against a centred moving median of its row (noise from Δ²);
    into ``d`` itself with ``inplace`` (its values are then gone).

    With ``transform="log"`` the residual is taken back to a relative departure first (the
    noise is multiplicative, ``x (1 + σ ε)``: a spike ``x (1 + kσ)`` is ``k`` of it, where
    its log is compressed to ``log(1 + kσ) / σ``).
    """
    with np.errstate(all="ignore"):
        sigma = K.diff_sigma(d) if sigma is None else sigma  # the row's Δ² noise (given when known)
        den = np.fmax(sigma, floor)
        r = median_residual(d, window, None if transform == "log" else den, inplace=inplace)  # one numba pass
        if r is None:
            r = K.centered_median(d, window)
            np.subtract(d, r, out=d if inplace else r)
            r = d if inplace else r
        elif transform != "log":
            return r
        if transform == "log":  # _relative, in place
            np.expm1(r, out=r)
        r /= den
        return r


def _drift_smooth(d: np.ndarray, window: int) -> np.ndarray:
    """The centred moving median over ``window`` steps of ``d``'s block means (blocks of
    ``window // 24`` steps: hourly for a day at 15 minutes), back on the steps; at least a
    quarter of the blocks must have values."""
    b = max(1, window // 24)
    n, n_t = d.shape
    nb = -(-n_t // b)
    if b == 1 or nb < 2:
        return K.centered_median(d, window, min_count=max(1, window // 4))
    blocks = K.block_means(d, b)  # np.nanmean's arithmetic per block, NaN for an empty one
    w = max(1, window // b)
    sm = moving_median(blocks, w, min_count=max(1, w // 4))
    return np.repeat(sm, b, axis=1)[:, :n_t]


def _row_wander(smooth: np.ndarray, lag: int, b: int = 1, n_t: int | None = None) -> np.ndarray:
    """Each row's robust spread of ``smooth(t) − smooth(t − lag)``, over √2 (a drift that ramps
    for days moves a few of these steps; a noisy series moves all of them). ``smooth`` may hold
    blocks of ``b`` of the ``n_t`` steps (step ``t`` is block ``t // b``)."""
    with np.errstate(all="ignore"):
        if b == 1:
            s = K._stride(smooth.shape[-1] - lag)  # row_mad's strided subsample, differenced (same values)
            return K.row_mad(smooth[:, lag::s] - smooth[:, :-lag:s]) / np.sqrt(2.0)
        s = K._stride(n_t - lag)
        t = np.arange(0, n_t - lag, s)
        return K.row_mad(smooth[:, (t + lag) // b] - smooth[:, t // b]) / np.sqrt(2.0)


def _wander(smooth: np.ndarray, lag: int, b: int = 1, n_t: int | None = None) -> float:
    """How far the zone's smoothed buddy differences wander by themselves: the median over its
    sensors of :func:`_row_wander`."""
    return float(np.nan_to_num(bn.nanmedian(_row_wander(smooth, lag, b, n_t))))


def _drift_departure(d: np.ndarray, usable: np.ndarray, window: int) -> np.ndarray:
    """The smoothed ``d`` (:func:`_drift_smooth`) where ``usable``, less each row's median."""
    dd = np.where(usable, d, np.nan)
    smooth = _drift_smooth(dd, window)
    if dd.shape[-1]:
        smooth -= K.row_median(dd)
    return smooth


def _spikes(bits: np.ndarray, y: np.ndarray, d: np.ndarray, n_others: np.ndarray, *, n_min: int, spike_z: float,
            spike_own_z: float, window: int, floor: float, transform: str) -> None:
    """The spike test, into ``bits`` (in place): the reading against the inverse-noise-weighted
    mean of its zone-mates (``z_zone``), confirmed on its own series (``z_own``, same sign),
    standing out in the zone (``|z_own|`` above the mates' mean) and not shared (the mates' own
    ``z`` of that sign averages below ``spike_own_z / 2``). A sensor with fewer than ``n_min``
    zone-mates reporting is never a spike here: its own series alone cannot tell a spike from
    weather (seeds 100-102, one sensor per zone: spike precision 0.02-0.25 with own-series
    tests); zones short of mates are tested against the other zones (:func:`_lone_flags`)."""
    sigma_y = K.diff_sigma(y)
    w = 1.0 / np.fmax(_own_noise(y, d, sigma_y), floor * floor)
    z_zone, _ = buddy_diff(y, n_min, w)
    _local_z(z_zone, window, floor, transform, inplace=True)
    ts = candidates(z_zone, spike_z)  # z_own matters only where some |z_zone| reaches spike_z
    with np.errstate(all="ignore"):
        z_own = residual_at(y, ts, window)  # _local_z's values at those steps
        if transform == "log":
            np.expm1(z_own, out=z_own)
        z_own /= np.fmax(sigma_y, floor)
    spike_bits_at(bits, z_zone, z_own, ts, n_others, n_min, spike_z, spike_own_z, K.SPIKE)


def _lone_flags(y: np.ndarray, bits: np.ndarray, ref: np.ndarray, *, spike_z: float | None, spike_own_z: float | None,
                window: int, floor: float, transform: str, drift_fraction: float | None, drift_window: int, drift_min: int,
                drift_spread: float, steps: int, ramp: float, up_only: bool = False, gain: float = 1.0) -> np.ndarray:
    """Spike and drift bits of rows without enough zone-mates (of any zones), each against its
    zone's reference row in ``ref`` (see :mod:`workbench.perception._lone`); ``bits`` holds the
    other tests. Row-wise throughout: the drift limit uses each row's own wander."""
    with np.errstate(all="ignore"):
        d = y - ref
    out = np.zeros(y.shape, dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        if spike_z and steps > 0:
            sigma = K.diff_sigma(d)
            z_nb = _local_z(d, window, floor, transform, sigma)
            z_own = _local_z(y, window, floor, transform)
            dr = _relative(d, transform)  # the scale z_nb is on
            out |= np.where(short_spikes(z_nb, z_own, dr, np.fmax(sigma, floor), spike_z=spike_z * gain, own_z=spike_own_z or 0.0,
                                         max_steps=steps, side=window // 2, up_only=up_only), np.uint8(K.SPIKE), np.uint8(0))
        if drift_fraction and ramp > 0:
            smooth = _drift_departure(d, ((bits | out) & (K.SPIKE | K.OUT_OF_RANGE)) == 0, drift_window)
            lim = np.full((smooth.shape[0], 1), float(drift_fraction))
            if drift_spread and smooth.shape[-1] > drift_window:  # each row's own wander (rows of many zones)
                lim = np.fmax(lim, drift_spread * np.nan_to_num(_row_wander(smooth, drift_window)))
            far = np.abs(smooth) >= lim
            out |= np.where(ramp_runs(smooth, far, min_len=drift_min, ratio=ramp), np.uint8(K.DRIFT), np.uint8(0))
    return out


def _zone_flags(x: np.ndarray, *, gap: int, fmin: int, fmax: int, alpha: float, transform: str, n_min: int,
                spike_z: float | None, spike_own_z: float | None, window: int, floor: float, drift_fraction: float | None,
                drift_window: int, drift_min: int, drift_spread: float, valid_min: float, valid_max: float,
                ref: np.ndarray | None = None, lone_spike_steps: int = 0, lone_drift_ramp: float = 0.0,
                lone_spike_up: bool = False, lone_spike_gain: float = 1.0) -> np.ndarray:
    bits = K.run_flags(x, gap_steps=gap, flat_min=fmin, flat_max=fmax, alpha=alpha)
    y = mask_and_range(x, glog(x, transform), bits, K.GAP | K.FLATLINE, valid_min, valid_max, K.OUT_OF_RANGE)
    if y.shape[-1]:
        with np.errstate(all="ignore"):
            y -= K.row_median(y)
    if ref is not None:  # too few mates: the neighbouring zones instead (the buddy tests cannot fire)
        return bits | _lone_flags(y, bits, ref, spike_z=spike_z, spike_own_z=spike_own_z, window=window, floor=floor,
                                  transform=transform, drift_fraction=drift_fraction, drift_window=drift_window,
                                  drift_min=drift_min, drift_spread=drift_spread, steps=lone_spike_steps,
                                  ramp=lone_drift_ramp, up_only=lone_spike_up, gain=lone_spike_gain)
    d, n_others = buddy_diff(y, n_min)  # the zone's common signal (rhythm, weather, events) cancels
    with np.errstate(invalid="ignore"):
        if spike_z:
            _spikes(bits, y, d, n_others, n_min=n_min, spike_z=spike_z, spike_own_z=spike_own_z or 0.0,
                    window=window, floor=floor, transform=transform)
        if drift_fraction:
            _zone_drift(bits, d, n_others, n_min=n_min, fraction=drift_fraction, window=drift_window, min_len=drift_min,
                        spread=drift_spread)
    return bits


def _zone_drift(bits: np.ndarray, d: np.ndarray, n_others: np.ndarray, *, n_min: int, fraction: float, window: int,
                min_len: int, spread: float) -> None:
    """The drift test of a zone, into ``bits`` (in place): the smoothed buddy difference
    (:func:`_drift_departure` of the usable readings: no spike or out-of-range bit, ``n_min``
    mates) departs by ``fraction`` (or ``spread`` × :func:`_wander`) and stands out in the zone
    for ``min_len`` steps. Kept at block level (``window // 24`` steps) until the last pass."""
    n_t = d.shape[-1]
    b = max(1, window // 24)
    if b == 1 or -(-n_t // b) < 2:  # on the steps (short series): _drift_smooth's own path
        smooth = _drift_departure(d, ((bits & (K.SPIKE | K.OUT_OF_RANGE)) == 0) & (n_others >= n_min), window)
        b = 1
    else:
        blocks, med = usable_summary(d, bits, K.SPIKE | K.OUT_OF_RANGE, n_others, n_min, b)
        w = max(1, window // b)
        smooth = moving_median(blocks, w, min_count=max(1, w // 4))
        smooth -= med
    lim = fraction
    if spread and n_t > window:
        lim = max(fraction, spread * _wander(smooth, window, b, n_t))
    drift_bits(bits, smooth, b, n_others, n_min, lim, min_len, K.DRIFT)


def flags_block(x: np.ndarray, *, codes: np.ndarray, dup: np.ndarray | None = None, lone_codes: np.ndarray | None = None,
                lone_ref: np.ndarray | None = None, **params) -> np.ndarray:
    """Flag bits of a zone-complete block (see :func:`workbench.perception.quality_flags`);
    zones in ``lone_codes`` are tested against their row of ``lone_ref`` (:mod:`._lone`)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape, dtype=np.uint8)
    alone = np.zeros(len(codes), dtype=bool)
    if lone_codes is not None and len(lone_codes):  # rows of such zones, LONE_ROWS at a time (row-wise tests)
        alone = np.isin(codes, lone_codes)
        every = np.flatnonzero(alone)
        for a in range(0, len(every), LONE_ROWS):
            rows = every[a:a + LONE_ROWS]
            k = np.searchsorted(lone_codes, codes[rows])  # lone_codes are sorted
            out[rows] = _zone_flags(np.ascontiguousarray(x[rows]), ref=np.asarray(lone_ref[k], dtype=np.float64), **params)
    for c in np.unique(codes[~alone]):
        rows = np.flatnonzero(codes == c)
        if rows[-1] - rows[0] + 1 == len(rows):  # the zone's rows are a run (zone-ordered blocks): a view
            rows = slice(rows[0], rows[-1] + 1)
        out[rows] = _zone_flags(np.ascontiguousarray(x[rows]), **params)
    if dup is not None and dup.any():
        out[:, dup] |= np.uint8(K.DUPLICATE)
    return out


