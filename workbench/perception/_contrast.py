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


def contrast(rbar: np.ndarray, background: np.ndarray, *, window: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Score and effect (zone × time) of each zone's slow residual above the city's background.

    ``rbar`` holds the zones' median residuals (zone × time), ``background`` the smallest slow
    residual of any zone of the city at each step. The effect is the contrast (qc_transform
    units); the score is the contrast, recentred by its median along time, over its robust
    spread (1.4826 × MAD, at least ``floor``).
    """
    with np.errstate(all="ignore"):
        c = slow_residual(rbar, window) - background[None, :]
        score = (c - K.row_median(c)) / np.fmax(K.row_mad(c), floor)
    return score, c
