"""Detected events against ground truth: precision, recall, F1 and time to detect.

Both tables have the event columns ``kind, system, zone, sensor, start, end`` (end
inclusive). A detected row and a truth row **match** when they agree on every key column in
``by`` and their time spans overlap once each is widened by ``tolerance`` on both sides.

- precision = detected rows that match some truth row / detected rows
- recall    = truth rows matched by some detected row / truth rows
- F1        = their harmonic mean
- time to detect = for each recalled truth row, the earliest matching detection's start
  minus the truth's start (negative when the detection starts early, within tolerance).

Counting rows on each side (not one-to-one pairs) keeps the measure honest under
fragmentation: a detector that splits one event into five pieces is not rewarded with five
true positives (recall counts the event once) and is not punished either (precision counts
pieces that all lie on the event). The same function scores fault flags (``by=["system",
"sensor", "kind"]``), sensor anomalies against zone-level events (``by=["system", "zone"]``)
and incidents (``by=["kind", "zone"]``).

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"kind": ["leak"], "system": ["water"], "zone": ["Z01"], "sensor": [""],
...                   "start": [pd.Timestamp("2026-07-06 10:00")], "end": [pd.Timestamp("2026-07-06 12:00")]})
>>> d = t.assign(start=pd.Timestamp("2026-07-06 10:30"), kind="anomaly")
>>> s = score(d, t, match="zone")
>>> (s["precision"], s["recall"], s["f1"], s["median_time_to_detect"])
(1.0, 1.0, 1.0, Timedelta('0 days 00:30:00'))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["score", "score_by", "match_table", "MATCH_KEYS"]

#: named key sets for ``match=``
MATCH_KEYS = {
    "sensor": ["system", "sensor"],
    "zone": ["system", "zone"],
    "kind_zone": ["kind", "zone"],
    "kind_sensor": ["kind", "system", "sensor"],
}


def _keys(match: str | None, by: Sequence[str] | None) -> list[str]:
    if by is not None:
        return list(by)
    if match not in MATCH_KEYS:
        raise ValueError(f"match must be one of {', '.join(MATCH_KEYS)} (or pass by=[columns]), not {match!r}.")
    return MATCH_KEYS[match]


def _check(df: pd.DataFrame, keys: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in [*keys, "start", "end"] if c not in df.columns]
    if missing:
        raise KeyError(f"the {what} table lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, df.columns))}.")
    out = df.reset_index(drop=True).copy()
    for c in ("start", "end"):
        out[c] = pd.to_datetime(out[c])
    for k in keys:
        out[k] = out[k].fillna("").astype(str)
    return out


def match_table(detected: pd.DataFrame, truth: pd.DataFrame, *, tolerance: str | pd.Timedelta = "1h",
                match: str | None = "sensor", by: Sequence[str] | None = None) -> pd.DataFrame:
    """Every matching (detected, truth) pair: columns ``det``, ``truth`` (row positions), ``delay``."""
    keys = _keys(match, by)
    d, t = _check(detected, keys, "detected"), _check(truth, keys, "truth")
    tol = pd.Timedelta(tolerance)
    d = d.assign(_det=np.arange(len(d)))
    t = t.assign(_truth=np.arange(len(t)))
    pairs = d[[*keys, "start", "end", "_det"]].merge(t[[*keys, "start", "end", "_truth"]], on=keys, suffixes=("_d", "_t"))
    ok = (pairs["start_d"] <= pairs["end_t"] + tol) & (pairs["end_d"] >= pairs["start_t"] - tol)
    pairs = pairs[ok]
    return pd.DataFrame({"det": pairs["_det"].to_numpy(), "truth": pairs["_truth"].to_numpy(),
                         "delay": (pairs["start_d"] - pairs["start_t"]).to_numpy()})


def score(detected: pd.DataFrame, truth: pd.DataFrame, *, tolerance: str | pd.Timedelta = "1h",
          match: str | None = "sensor", by: Sequence[str] | None = None) -> dict[str, Any]:
    """Precision, recall, F1 and median time to detect of ``detected`` against ``truth``.

    Parameters
    ----------
    detected, truth
        Event tables (``kind, system, zone, sensor, start, end``, end inclusive).
    tolerance
        How far apart in time two rows may be and still match.
    match
        ``"sensor"`` (system + sensor), ``"zone"`` (system + zone), ``"kind_zone"`` or
        ``"kind_sensor"``; ignored when ``by`` is given.
    by
        The key columns that must be equal, e.g. ``["kind", "zone"]`` for incidents.

    Returns
    -------
    dict
        ``precision, recall, f1, median_time_to_detect`` (a Timedelta, NaT when nothing was
        recalled), ``n_detected, n_truth, true_positives`` (matching detections),
        ``recalled`` (matched truth rows), ``false_positives, false_negatives``, ``by``,
        ``tolerance``. With no detections precision is 1.0; with no truth recall is 1.0.
    """
    keys = _keys(match, by)
    pairs = match_table(detected, truth, tolerance=tolerance, by=keys)
    n_d, n_t = len(detected), len(truth)
    tp = int(pairs["det"].nunique())
    rec = int(pairs["truth"].nunique())
    precision = tp / n_d if n_d else 1.0
    recall = rec / n_t if n_t else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    first = pairs.groupby("truth")["delay"].min() if len(pairs) else pd.Series(dtype="timedelta64[ns]")
    ttd = pd.to_timedelta(first).median() if len(first) else pd.NaT
    return {
        "precision": float(precision), "recall": float(recall), "f1": float(f1), "median_time_to_detect": ttd,
        "n_detected": n_d, "n_truth": n_t, "true_positives": tp, "recalled": rec,
        "false_positives": n_d - tp, "false_negatives": n_t - rec, "by": keys, "tolerance": str(pd.Timedelta(tolerance)),
    }


def score_by(detected: pd.DataFrame, truth: pd.DataFrame, column: str = "kind", *, tolerance: str | pd.Timedelta = "1h",
             match: str | None = "sensor", by: Sequence[str] | None = None, detected_column: str | None = None) -> pd.DataFrame:
    """:func:`score` per value of ``column`` (e.g. per fault kind or per system), one row each.

    Truth rows are split by ``truth[column]``; detections by ``detected[detected_column or
    column]`` when that column exists there, otherwise every detection is scored against each
    part (then only recall is meaningful and precision is left NaN).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"kind": ["gap", "spike"], "system": ["water"] * 2, "zone": ["Z01"] * 2, "sensor": ["W1", "W2"],
    ...                   "start": pd.to_datetime(["2026-07-06 01:00", "2026-07-06 05:00"]),
    ...                   "end": pd.to_datetime(["2026-07-06 02:00", "2026-07-06 05:00"])})
    >>> score_by(t.iloc[:1], t)[["kind", "recall"]].to_dict("records")
    [{'kind': 'gap', 'recall': 1.0}, {'kind': 'spike', 'recall': 0.0}]
    """
    dcol = detected_column or column
    rows = []
    for value in sorted(truth[column].astype(str).unique()):
        t = truth[truth[column].astype(str) == value]
        split = dcol in detected.columns
        d = detected[detected[dcol].astype(str) == value] if split else detected
        s = score(d, t, tolerance=tolerance, match=match, by=by)
        if not split:
            s["precision"], s["f1"] = np.nan, np.nan
        rows.append({column: value, **{k: v for k, v in s.items() if k not in ("by", "tolerance")}})
    return pd.DataFrame(rows)
