"""Confirmed anomalies: runs of a variable that count only where another variable of the zone
departs with them (``anomaly_confirmed_by``, ``anomaly_confirmed_direction``).

Trip demand varies by about ±8 % from hour to hour in each district, so traffic flow falls
by a fifth now and then for no reason but fewer trips — and then traffic moves *faster*
(less congestion). An incident's queue lowers flow **and** speed. A drop of flow is therefore
kept only where a detected drop of speed in the same zone overlaps it (within the merge
tolerance); rises of flow (crowds arriving at a gathering) are left alone. Applied last, after
corroboration (:func:`workbench.perception.anomalies.corroborate`), so a flow drop still
counts as evidence for the targeted NO2 test even where it is not an anomaly by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from workbench.perception._common import thresholds_for
from workbench.perception._intervals import departing, overlaps

__all__ = ["confirm", "unconfirmed_rows"]


def unconfirmed_rows(detected: pd.DataFrame, *, thresholds: Mapping[str, Any] | None = None,
                     tolerance: str | pd.Timedelta = "1h") -> np.ndarray:
    """Which rows of ``detected`` need a confirmation they lack (boolean, one per row).

    A row needs one when its variable has ``anomaly_confirmed_by`` (registry: ``{variable:
    up|down}``) and its score departs in ``anomaly_confirmed_direction`` (``up``, ``down`` or
    ``both``); it has one when a row of a named variable of the **same zone**, departing in
    the named direction, overlaps it within ``tolerance``.
    """
    drop = np.zeros(len(detected), dtype=bool)
    if not len(detected) or "variable" not in detected:
        return drop
    tol = np.int64(pd.Timedelta(tolerance).value)
    sign = np.sign(detected["score"].to_numpy(dtype=float)) if "score" in detected else np.zeros(len(detected))
    variable = detected["variable"].to_numpy()
    for name in pd.unique(variable):
        th = thresholds_for(str(name), thresholds)
        sources = th.get("anomaly_confirmed_by") or {}
        if not sources:
            continue
        way = th.get("anomaly_confirmed_direction") or "both"
        need = (variable == name) & (True if way == "both" else sign == (1.0 if way == "up" else -1.0))
        if not need.any():
            continue
        ok = departing(detected, sources)
        idx = np.flatnonzero(need)
        c, s = detected.iloc[idx], detected.loc[ok]
        hit = overlaps(c["zone"], c["start"], c["end"], s["zone"], s["start"], s["end"], tol)
        drop[idx[~hit]] = True
    return drop


def confirm(detected: pd.DataFrame, *, thresholds: Mapping[str, Any] | None = None,
            tolerance: str | pd.Timedelta = "1h") -> pd.DataFrame:
    """``detected`` without the rows :func:`unconfirmed_rows` finds (order kept, index reset).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp("2026-07-06 10:00")
    >>> row = dict(kind="anomaly", system="transport", zone="Z01", start=t, end=t + pd.Timedelta("1h"), severity=6.0)
    >>> flow = dict(row, sensor="t1", variable="traffic_flow", score=-6.0)
    >>> speed = dict(row, sensor="t2", variable="traffic_speed", score=-7.0)
    >>> len(confirm(pd.DataFrame([flow]))), len(confirm(pd.DataFrame([flow, speed]))), len(confirm(pd.DataFrame([dict(flow, score=6.0)])))
    (0, 2, 1)
    """
    drop = unconfirmed_rows(detected, thresholds=thresholds, tolerance=tolerance)
    if not drop.any():
        return detected
    return detected[~drop].reset_index(drop=True)
