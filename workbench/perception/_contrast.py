"""A zone against the rest of the city, on a slow time scale (``anomaly_contrast_hours``).

City-wide weather (fronts of days, passing clouds) moves every zone alike; an event that
covers part of the city for days (a heatwave over some districts) moves only those. Per zone,
the **slow residual** is a centred moving median (``window`` steps, a day) of the zone's median
departure from its profile — short events (outages, incidents) do not move it. The city's
**background** at each step is the smallest slow residual of any zone (the least departing
zone: an event that covers most of the city still leaves it out, which a median would not),
computed over the whole city (a lazy reduction along ``sensor`` in
:func:`workbench.perception.anomaly_scores`, so it never depends on the chunking). A zone's
**contrast** is its slow residual minus the background; its score is the contrast over its
robust spread along time. No contrast is seen when every zone is hit at once: then only the
per-zone temporal scan can see the event.
"""

from __future__ import annotations

import numba
import numpy as np

from workbench.perception import _kernels as K

__all__ = ["slow_residual", "contrast"]


def slow_residual(rbar: np.ndarray, window: int) -> np.ndarray:
    """Centred moving median of each zone's residual row over ``window`` steps (half of them needed)."""
    return K.centered_median(rbar, window, min_count=max(1, window // 2))


def contrast(score: np.ndarray, effect: np.ndarray, slow: np.ndarray, background: np.ndarray, *, floor: float,
             gain: float = 1.0, direction: str = "both", absolute: float = 0.0,
             bar: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Score and effect (float32, rows × time) with each row's zone contrast where it is stronger.

    ``score`` and ``effect`` are a row's temporal scan score and 1-hour departure
    (:func:`~workbench.perception._blocks.scores_block`), ``slow`` its zone's slow residual,
    ``background`` the city's smallest slow residual at each step. The contrast score is the
    slow contrast ``slow − background``, recentred by its median along time, over its robust
    spread (1.4826 × MAD, at least ``floor``), times ``gain``, kept only where positive (the
    background is the city's minimum: a zone cannot depart below it); its effect is the smaller of the
    slow contrast and the 1-hour departure above the background, zero when they disagree in
    sign (the slow window must not carry an event past its end). Rows of one zone carry the
    same zone values, so they get the same contrast whatever the chunking.

    With ``absolute`` (``anomaly_absolute_effect``, in transformed units) the slow residual
    itself is also a test, with no recalibration: its score is ``bar × slow / absolute`` (a
    slow departure of ``absolute`` reaches the detector's default threshold ``bar``), its
    effect the smaller of the slow and the 1-hour departure (zero when they disagree in sign).
    It sees an event that covers every zone (where the contrast is blind) when it departs
    further than the city's weather does on that scale. It replaces the score only where it
    reaches ``bar`` and is the stronger (elsewhere the score is left as it was).

    One numba pass per row (:func:`_contrast_rows`): the row's median and MAD of the contrast
    from :func:`~workbench.perception._kernels.row_mad`'s strided subsample, then both outputs
    step by step, with NumPy's dtypes (float64 contrast, the inputs' own type for the 1-hour
    departures) — the same values as the array expression, no full-size temporaries.
    """
    shape = np.broadcast_shapes(np.shape(score), np.shape(effect), np.shape(slow), np.shape(background))
    if len(shape) != 2:  # not a (rows, time) block: the same per row
        flat = [np.broadcast_to(a, shape).reshape(-1, shape[-1]) for a in (score, effect, slow, background)]
        s, e = contrast(*flat, floor=floor, gain=gain, direction=direction, absolute=absolute, bar=bar)
        return s.reshape(shape), e.reshape(shape)
    score, effect, slow, background = (np.broadcast_to(np.asarray(a), shape) for a in (score, effect, slow, background))
    code = {"both": 0, "up": 1, "down": -1}[direction]
    return _contrast_rows(score, effect, slow, background, float(floor), float(gain), code, float(absolute), float(bar),
                          K._stride(shape[-1], 8192))


@numba.njit(cache=True, nogil=True)
def _contrast_rows(score, effect, slow, bg, floor, gain, direction, absolute, bar, stride):  # pragma: no cover - compiled
    n_s, n_t = score.shape
    out_s = np.empty((n_s, n_t), dtype=np.float32)
    out_e = np.empty((n_s, n_t), dtype=np.float32)
    buf = np.empty((n_t + stride - 1) // stride)
    tmp = np.empty(buf.shape[0])
    for i in range(n_s):
        # the row's median and MAD of c = slow - background (row_median / row_mad: strided, NaN skipped)
        m = 0
        for t in range(0, n_t, stride):
            c = np.float64(slow[i, t]) - np.float64(bg[i, t])
            if not np.isnan(c):
                buf[m] = c
                m += 1
        med = np.nan
        mad = np.nan
        if m:
            med = K._median(buf, m, tmp)
            for k in range(m):
                buf[k] = abs(buf[k] - med)
            mad = 1.4826 * K._median(buf, m, tmp)
        den = mad if mad >= floor else floor  # np.fmax(mad, floor): NaN -> floor
        if np.isnan(mad):
            den = floor
        for t in range(n_t):
            s0 = score[i, t]
            e0 = effect[i, t]
            sl = slow[i, t]
            c = np.float64(sl) - np.float64(bg[i, t])
            # cs = np.fmax(gain * (c - med) / den, 0.0) (NaN -> 0, -0.0 kept)
            cs = gain * (c - med) / den
            if np.isnan(cs) or not cs >= 0.0:
                cs = 0.0
            if direction == -1:
                cs = 0.0
            now = e0 - bg[i, t]  # the inputs' type (float32 in the pipeline), as NumPy does
            ce = 0.0
            if c * now > 0:
                ce = min(abs(c), np.float64(abs(now)))
                if c < 0:
                    ce = -ce
            vs = np.float64(s0)
            ve = np.float64(e0)
            if not np.isnan(s0) and abs(cs) > abs(vs):
                vs = cs
                ve = ce
            if absolute > 0:
                a = bar * np.float64(sl) / absolute
                if direction == 1 and not a > 0:
                    a = 0.0
                elif direction == -1 and not a < 0:
                    a = 0.0
                if not np.isnan(vs) and abs(a) >= bar and abs(a) > abs(vs):
                    vs = a
                    ve = 0.0
                    if sl * e0 > 0:  # the product in the inputs' type, as NumPy forms it
                        ve = np.float64(min(abs(sl), abs(e0)))
                        if sl < 0:
                            ve = -ve
            out_s[i, t] = np.float32(vs)
            out_e[i, t] = np.float32(ve)
    return out_s, out_e
