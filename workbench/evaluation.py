"""Incidents against ground truth: F1 by kind and zone, time to detect, false alarms.

An incident matches a ground-truth event when kind and zone agree and their intervals
overlap (each widened by ``tolerance``); each event and each incident is matched at most
once (greedy, largest overlap first). Events are counted once per (event, zone) — the ground
truth has one row per affected system. ``sensor_fault`` incidents are not events and are left
out, and so are the truth's ``role="neighbour"`` rows (an event's spill into adjacent
zones: an incident is named in the event's own zone). Time to detect is the incident's
``detected_at`` (the step at which the causal detector fired) minus the event's start.

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

from workbench import registry

__all__ = ["score_incidents", "match_incidents", "false_alarm_rate", "incident_benchmark"]

_EVENT_KINDS = registry.event_kinds()


def _events_once(events: pd.DataFrame) -> pd.DataFrame:
    if "role" in events.columns:  # an incident is named in its own zone: spill rows are not incidents
        events = events[events["role"] == "primary"]
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


def incident_benchmark(
    seeds=(0, 1, 2, 3),
    *,
    tolerance: str = "1h",
    quiet: bool = True,
    **city: object,
) -> dict[str, pd.DataFrame]:
    """Detect and score incidents on reference cities (the numbers ``docs/integration.md`` reports).

    Builds ``workbench.synth.make_city(seed=s, **city)`` for each seed (the reference city's
    defaults: 12 zones, 40 sensors per system, 28 days), detects incidents and scores them
    against the ground truth; with ``quiet`` also its event-free twin for false alarms.
    Scoring code may read the ground truth; detectors never do.

    Returns
    -------
    dict
        ``by_kind`` (pooled over seeds: events, incidents, tp, precision, recall, f1, median
        time to detect in minutes), ``by_seed`` (one row per seed: the ``all`` scores and
        false alarms per zone-week), and ``shared`` (``workbench.scoring.score`` with
        ``match="kind_zone"``, row-counting, per seed).
    """
    from workbench.integration.incidents import detect_incidents
    from workbench.synth import ground_truth, make_city

    per_kind, per_seed, shared = [], [], []
    for seed in seeds:
        c = make_city(seed=int(seed), **city)
        inc = detect_incidents(c, anomalies=None)
        events = ground_truth(c)[0]
        s = score_incidents(inc, events, tolerance=tolerance)
        s["seed"] = seed
        per_kind.append(s)
        row = {"seed": seed, **{k: s.loc["all", k] for k in ("n_events", "n_incidents", "tp", "precision", "recall", "f1", "ttd_median_min")}}
        p = c.attrs.get("synth_params", "{}")
        import json

        prm = json.loads(p)
        if quiet:
            q = detect_incidents(make_city(seed=int(seed), **{**city, "events": False}))
            row["false_alarms"] = int(q["kind"].isin(_EVENT_KINDS).sum())
            row["false_alarms_per_zone_week"] = false_alarm_rate(q, zones=prm["zones"], days=prm["days"])
        per_seed.append(row)
        try:
            from workbench.scoring import score
        except ImportError:
            continue
        ev1 = _events_once(events)
        sh = score(inc[inc["kind"].isin(_EVENT_KINDS)], ev1, tolerance=tolerance, match="kind_zone")
        shared.append({"seed": seed, **{k: sh[k] for k in ("precision", "recall", "f1", "median_time_to_detect") if k in sh}})
    allk = pd.concat(per_kind)
    g = allk.groupby(level=0)[["n_events", "n_incidents", "tp"]].sum()
    g["precision"] = g["tp"] / g["n_incidents"].where(g["n_incidents"] > 0)
    g["recall"] = g["tp"] / g["n_events"].where(g["n_events"] > 0)
    g["f1"] = 2 * g["precision"] * g["recall"] / (g["precision"] + g["recall"])
    g["ttd_median_min"] = allk.groupby(level=0)["ttd_median_min"].median()
    g = g.reindex([*_EVENT_KINDS, "all"])
    return {"by_kind": g, "by_seed": pd.DataFrame(per_seed).set_index("seed"), "shared": pd.DataFrame(shared)}
