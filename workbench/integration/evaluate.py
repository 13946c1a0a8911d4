"""Incidents against ground truth: F1 by kind and zone, time to detect, false alarms.

An incident matches a ground-truth event when kind and zone agree and their intervals
overlap (each widened by ``tolerance``); each event and each incident is matched at most
once (greedy, largest overlap first). Events are counted once per (event, zone) — the ground
truth has one row per affected system. ``sensor_fault`` incidents are not events and are left
out. Time to detect is the incident's ``detected_at`` (the step at which the causal detector
fired) minus the event's start.

Examples
--------
>>> import pandas as pd
>>> t = pd.Timestamp("2026-07-06 10:00")
>>> ev = pd.DataFrame({"kind": ["water_leak"], "zone": ["Z01"], "start": [t], "end": [t + pd.Timedelta("6h")], "event_id": [0]})
>>> inc = ev.assign(detected_at=t + pd.Timedelta("1h"))
>>> s = score_incidents(inc, ev)
>>> float(s.loc["all", "f1"]), float(s.loc["all", "ttd_median_min"])
(1.0, 60.0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["score_incidents", "match_incidents", "false_alarm_rate"]

_EVENT_KINDS = ("heatwave", "water_leak", "power_outage", "network_outage", "traffic_incident", "public_gathering")


def _events_once(events: pd.DataFrame) -> pd.DataFrame:
    keys = ["event_id", "zone"] if "event_id" in events.columns else ["kind", "zone", "start", "end"]
    return events.drop_duplicates(keys).reset_index(drop=True)


def match_incidents(incidents: pd.DataFrame, events: pd.DataFrame, *, tolerance: str | pd.Timedelta = "1h") -> pd.DataFrame:
    """Pairs (incident index, event index, overlap) of matched incidents and events."""
    tol = pd.Timedelta(tolerance)
    inc = incidents[incidents["kind"].isin(_EVENT_KINDS)]
    pairs = []
    for i, r in inc.iterrows():
        cand = events[(events["kind"] == r["kind"]) & (events["zone"] == r["zone"])
                      & (events["start"] - tol <= r["end"]) & (events["end"] + tol >= r["start"])]
        for j, e in cand.iterrows():
            ov = (min(r["end"], e["end"]) - max(r["start"], e["start"])) / pd.Timedelta("1min")
            pairs.append((i, j, ov))
    pairs.sort(key=lambda p: -p[2])
    used_i, used_j, out = set(), set(), []
    for i, j, ov in pairs:
        if i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j.add(j)
        out.append((i, j, ov))
    return pd.DataFrame(out, columns=["incident", "event", "overlap_min"])


def score_incidents(
    incidents: pd.DataFrame,
    events: pd.DataFrame,
    *,
    tolerance: str | pd.Timedelta = "1h",
) -> pd.DataFrame:
    """Precision, recall, F1 and median time to detect, per kind and over all kinds.

    Returns
    -------
    pandas.DataFrame
        Index: each event kind and ``all``; columns ``n_events, n_incidents, tp, precision,
        recall, f1, ttd_median_min``.
    """
    ev = _events_once(events)
    inc = incidents[incidents["kind"].isin(_EVENT_KINDS)].reset_index(drop=True)
    m = match_incidents(inc, ev, tolerance=tolerance)
    det_col = "detected_at" if "detected_at" in inc.columns else "start"
    ttd = pd.Series(dtype=float)
    if len(m):
        ttd = pd.Series(
            ((inc.loc[m["incident"], det_col].to_numpy() - ev.loc[m["event"], "start"].to_numpy()) / pd.Timedelta("1min")),
            index=ev.loc[m["event"], "kind"].to_numpy(),
        )
    rows = {}
    for kind in (*_EVENT_KINDS, "all"):
        sel_e = ev if kind == "all" else ev[ev["kind"] == kind]
        sel_i = inc if kind == "all" else inc[inc["kind"] == kind]
        tp = int(m["event"].isin(sel_e.index).sum()) if len(m) else 0
        n_e, n_i = len(sel_e), len(sel_i)
        p = tp / n_i if n_i else (1.0 if n_e == 0 else 0.0)
        r = tp / n_e if n_e else (1.0 if n_i == 0 else 0.0)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        t = ttd if kind == "all" else ttd[ttd.index == kind]
        rows[kind] = {"n_events": n_e, "n_incidents": n_i, "tp": tp, "precision": p, "recall": r, "f1": f1,
                      "ttd_median_min": float(np.median(t)) if len(t) else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index")


def false_alarm_rate(incidents: pd.DataFrame, *, zones: int, days: float) -> float:
    """Event-kind incidents per zone-week (use on an event-free city)."""
    n = int(incidents["kind"].isin(_EVENT_KINDS).sum())
    return n / (zones * days / 7.0)
