"""Corroboration from the adjacent zones (``anomaly_corroborated_nearby``) and the lower bar's
own floor and sign (``anomaly_corroborated_min_effect``, ``anomaly_corroborated_direction``).

When a network's cells fail, phones hand over to the neighbouring cells: their traffic rises
+10-30 % while the failed zone's falls to nothing. The rise is small, but the question "did
the zones next to a confirmed outage take its traffic?" is a targeted test, like the same-zone
corroboration of :func:`workbench.perception.anomalies.corroborate`: a run of a variable at its
lower bar, departing in ``anomaly_corroborated_direction``, is kept where a detection of a
variable named in ``anomaly_corroborated_nearby`` (``{variable: up|down}``) in an **adjacent**
zone departs in the named direction and overlaps it within the tolerance. Adjacency is data:
the city's ``/zones`` node lists each district's ``neighbours`` (shared boundaries).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from workbench.perception._intervals import departing, overlaps

__all__ = ["weak_mask", "nearby_hits"]


def weak_mask(score: Any, effect: Any, th: Mapping[str, Any], bar: float) -> Any:
    """Steps of a run at the lower ``bar``: ``|score| ≥ bar`` and ``|effect| ≥`` the floor
    (``anomaly_corroborated_min_effect``, else ``anomaly_min_effect``), in
    ``anomaly_corroborated_direction`` (``up``, ``down``, or both when unset). Lazy in, lazy out."""
    floor = th.get("anomaly_corroborated_min_effect")
    floor = float(th["anomaly_min_effect"] if floor is None else floor)
    way = th.get("anomaly_corroborated_direction") or "both"
    if way == "up":
        return (score >= bar) & (effect >= floor)
    if way == "down":
        return (score <= -bar) & (effect <= -floor)
    return (abs(score) >= bar) & (abs(effect) >= floor)


def nearby_hits(weak: pd.DataFrame, detected: pd.DataFrame, sources: Mapping[str, str],
                neighbours: Mapping[str, list[str]], tol: np.int64) -> np.ndarray:
    """For each row of ``weak``, whether a row of ``detected`` in an adjacent zone, of a variable
    of ``sources`` departing in its direction (the sign of ``score``), overlaps it within ``tol`` ns."""
    out = np.zeros(len(weak), dtype=bool)
    if not len(weak) or not len(detected) or not sources:
        return out
    ok = departing(detected, sources)
    src_rows = detected.loc[ok, ["zone", "start", "end"]]
    if not len(src_rows):
        return out
    # each source row stands in every zone adjacent to its own (a few per row)
    nb = src_rows["zone"].astype(str).map(lambda z: neighbours.get(z, []))
    spread = src_rows.assign(zone=nb).explode("zone").dropna(subset=["zone"])
    if not len(spread):
        return out
    return overlaps(weak["zone"].astype(str), weak["start"], weak["end"], spread["zone"].astype(str), spread["start"],
                     spread["end"], tol)
