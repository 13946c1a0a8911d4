"""A zone against the city with the zone's own loading on the city-wide factor
(``anomaly_city: loading``).

:func:`~workbench.perception._blocks.city_scan_block` scans each zone's mean ``z`` minus the
city's median zone. Shared drivers do not move every zone by the same amount, though: rain is
heavier in some districts, and it keeps people indoors more where more of the day's footfall
is on foot. Here each zone's **loading** ``β`` on the city factor ``c`` (the median zone's
mean ``z``) is its least-squares slope on ``c`` over the steps where the city departs
(``|c| > CITY_MOVES``; where nothing moves the city the ratio is noise), at least 0 (1 when
the city never departs), and the scan runs on ``zone − β · c``. ``β`` of a zone depends only
on its own row and the city's, so the result does not depend on the chunking.
"""

from __future__ import annotations

import numpy as np

from workbench.perception import _kernels as K
from workbench.perception._blocks import _first_rows, _zone_index

__all__ = ["loading", "loading_scan_block", "CITY_MOVES"]

#: the city factor (median zone's mean z) departs beyond this where the loadings are fitted
#: (seeds 100-109: 1.0 better than every step, 2.0 worse)
CITY_MOVES = 1.0


def loading(zone: np.ndarray, city: np.ndarray, moves: float = CITY_MOVES) -> np.ndarray:
    """Each row's least-squares slope on ``city`` over the steps where ``|city| > moves``
    (NaN-aware; at least 0; 1 where the city never departs).

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([0.0, 2.0, -2.0, 0.5])
    >>> loading(np.array([[0.3, 3.0, -3.0, 9.0], [0.0, -1.0, 1.0, 0.0]]), c).tolist()
    [1.5, 0.0]
    """
    with np.errstate(invalid="ignore"):
        big = ~np.isnan(zone) & (np.abs(city) > moves)[None, :]
        num = np.where(big, zone * city[None, :], 0.0).sum(axis=1)
        den = np.where(big, city[None, :] ** 2, 0.0).sum(axis=1)
    return np.where(den > 0, np.maximum(num / np.where(den > 0, den, 1.0), 0.0), 1.0)


def loading_scan_block(rep: np.ndarray, z: np.ndarray, city: np.ndarray, *, codes: np.ndarray,
                       scales: tuple[int, ...], gain: float = 1.0, direction: str = "both") -> np.ndarray:
    """Scan score (float32) of each zone's mean ``z`` minus its loading × the city's median zone.

    Inputs as :func:`~workbench.perception._blocks.city_scan_block` (``rep``: each zone's
    mean ``z`` in its first row; ``city``: the median over the zones at each step).
    """
    zones, inv = _zone_index(codes)
    first = _first_rows(inv, len(zones))
    zb = rep[first].astype(np.float64)
    c = np.asarray(city, dtype=np.float64)[first[0]] if len(first) else np.empty(rep.shape[-1])
    d = zb - loading(zb, c)[:, None] * c[None, :]
    return K.expand(K.scan_max(d, scales), inv, z, gain=gain, direction=direction)  # one pass to float32
