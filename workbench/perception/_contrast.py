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
    """
    with np.errstate(all="ignore"):
        c = slow.astype(np.float64) - background
        # rises only: the background is the city's minimum, so nothing can depart below it
        cs = np.fmax(gain * (c - K.row_median(c)) / np.fmax(K.row_mad(c), floor), 0.0)
        if direction == "down":
            cs = np.zeros_like(cs)
        now = effect - background
        ce = np.where(c * now > 0, np.sign(c) * np.fmin(np.abs(c), np.abs(now)), 0.0)
        take = ~np.isnan(score) & (np.abs(cs) > np.abs(score))
        out_s, out_e = np.where(take, cs, score), np.where(take, ce, effect)
        if absolute > 0:
            a = bar * slow.astype(np.float64) / absolute
            if direction != "both":
                a = np.where(a > 0 if direction == "up" else a < 0, a, 0.0)
            ae = np.where(slow * effect > 0, np.sign(slow) * np.fmin(np.abs(slow), np.abs(effect)), 0.0)
            take = ~np.isnan(out_s) & (np.abs(a) >= bar) & (np.abs(a) > np.abs(out_s))  # only where it is a finding
            out_s, out_e = np.where(take, a, out_s), np.where(take, ae, out_e)
    return out_s.astype(np.float32), out_e.astype(np.float32)
