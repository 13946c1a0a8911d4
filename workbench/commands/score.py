"""``workbench score``: fault-flag and sensor-anomaly scores against a reference city's truth.

For each seed a reference city is generated in memory (``workbench.synth``; the scoring
script may import it, the detectors never do), flagged and scanned; the printout gives, per
seed and overall:

- **faults**: flag runs (gap, flatline, spike, drift) against the fault truth, matched on
  system + sensor + kind, within the tolerance;
- **anomalies**: sensor anomalies against the event truth, matched on system + zone (an
  event row names a system and a zone: every sensor of that system in that zone may show it),
  with recall per truth ``role`` (``primary``: the event's zone; ``neighbour``: an adjacent
  zone its effect spills into).

Faults are rare at the reference rate (about 2 per 100 sensor-months, a handful per city),
so the fault score uses ``--fault-rate`` (default 0.3 per sensor and 30 days) on cities that
are otherwise the reference configuration. ``--dataset``/``--store`` score a stored city
whose truth the synth can rebuild (it carries ``synth_params``).

``--incidents`` adds the integration stage: incidents (``workbench.integration.detect_incidents``)
against the event truth by kind and zone (``workbench.evaluation.score_incidents``), per kind
and per seed, with the median time to detect, and false alarms per zone-week on each city's
event-free twin.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import pandas as pd

__all__ = ["register", "run", "score_city"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("score", help="score fault flags and anomaly detection against the reference city's truth",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", help="a catalogued reference city (e.g. reference)")
    src.add_argument("--store", help="a city store (.zarr/.nc) made by workbench generate")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="seeds of in-memory reference cities (default 0 1 2 3)")
    p.add_argument("--noise", type=float, nargs="+", default=[1.0], help="noise multipliers to score (default 1.0)")
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--zones", type=int, default=12)
    p.add_argument("--sensors", type=int, default=40, help="sensors per system")
    p.add_argument("--fault-rate", type=float, default=0.3, help="faults per sensor and 30 days for the fault score (default 0.3)")
    p.add_argument("--threshold", type=float, default=None, help="anomaly score threshold (default: the detector's)")
    p.add_argument("--tolerance", default="1h")
    p.add_argument("--incidents", action="store_true", help="also score incidents: per kind and per seed, time to detect, false alarms per zone-week")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _clean(s: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in s.items():
        if isinstance(v, pd.Timedelta):
            v = str(v)
        elif v is pd.NaT:
            v = None
        out[k] = v
    return out


def score_city(city, *, fault_city=None, threshold: float | None = None, tolerance: str = "1h") -> dict[str, Any]:
    """Fault-flag and anomaly scores of one reference city (and its high-fault-rate twin)."""
    from workbench.perception import DEFAULT_THRESHOLD, detect_anomalies, flag_events, quality_flags
    from workbench.scoring import score, score_by
    from workbench.synth import ground_truth

    fault_city = fault_city if fault_city is not None else city
    _, faults = ground_truth(fault_city)
    flagged = flag_events(quality_flags(fault_city), kinds=("gap", "flatline", "spike", "drift"))
    keys = ["system", "sensor", "kind"]
    events, _ = ground_truth(city)
    det = detect_anomalies(city, threshold=threshold or DEFAULT_THRESHOLD)
    kinds = score_by(flagged, faults, "kind", by=keys, tolerance=tolerance)
    per_sys = score_by(det, events, "system", match="zone", tolerance=tolerance)
    per_kind = score_by(det, events, "kind", match="zone", tolerance=tolerance, detected_column="_none")
    per_role = (score_by(det, events, "role", match="zone", tolerance=tolerance, detected_column="_none")
                if "role" in events.columns else pd.DataFrame(columns=["role", "recall", "n_truth"]))
    no_srv = events[events["system"] != "services"]
    det_no_srv = det[det["system"] != "services"]
    return {
        "faults": _clean(score(flagged, faults, by=keys, tolerance=tolerance)),
        "faults_by_kind": kinds.assign(median_time_to_detect=kinds["median_time_to_detect"].astype(str)).to_dict("records"),
        "anomalies": _clean(score(det, events, match="zone", tolerance=tolerance)),
        "anomalies_without_services": _clean(score(det_no_srv, no_srv, match="zone", tolerance=tolerance)),
        "anomalies_by_system": per_sys.assign(median_time_to_detect=per_sys["median_time_to_detect"].astype(str)).to_dict("records"),
        "anomaly_recall_by_event_kind": per_kind[["kind", "recall", "n_truth"]].to_dict("records"),
        "anomaly_recall_by_role": per_role[["role", "recall", "n_truth"]].to_dict("records"),
    }


def incident_scores(city, size: dict[str, Any], *, tolerance: str = "1h") -> dict[str, Any]:
    """Incidents of one reference city by kind (precision, recall, F1, median time to detect)
    and false alarms per zone-week on its event-free twin."""
    from workbench.evaluation import false_alarm_rate, score_incidents
    from workbench.integration import detect_incidents
    from workbench.synth import ground_truth, make_city

    by_kind = score_incidents(detect_incidents(city), ground_truth(city)[0], tolerance=tolerance)
    quiet = detect_incidents(make_city(**{**size, "events": False}))
    return {"by_kind": by_kind.reset_index(names="kind").to_dict("records"),
            "false_alarms": int(quiet["kind"].isin(by_kind.index).sum()),
            "false_alarms_per_zone_week": false_alarm_rate(quiet, zones=size["zones"], days=size["days"])}


def _print_incidents(inc: dict[str, Any]) -> None:
    print("  incidents (kind and zone)       events incidents  tp     P     R    F1  median time to detect")
    for k in inc["by_kind"]:
        print(f"    {k['kind']:<28} {k['n_events']:>6} {k['n_incidents']:>9} {k['tp']:>3} {k['precision']:.3f} {k['recall']:.3f} "
              f"{k['f1']:.3f}  {k['ttd_median_min']:.0f} min")
    print(f"    false alarms (event-free twin): {inc['false_alarms']} = {inc['false_alarms_per_zone_week']:.3f} per zone-week")


def _print_incident_summary(results: list[dict[str, Any]]) -> None:
    rows = [r for r in results if r.get("incidents")]
    if not rows:
        return
    print("incidents per seed:")
    print("  seed  noise  events incidents  tp     P     R    F1  median time to detect  false alarms / zone-week")
    for r in rows:
        a = next(k for k in r["incidents"]["by_kind"] if k["kind"] == "all")
        print(f"  {r['seed']:>4} {r['noise']:>6} {a['n_events']:>7} {a['n_incidents']:>9} {a['tp']:>3} {a['precision']:.3f} "
              f"{a['recall']:.3f} {a['f1']:.3f}  {a['ttd_median_min']:>10.0f} min {r['incidents']['false_alarms_per_zone_week']:>16.3f}")
    pooled = pd.DataFrame([k for r in rows for k in r["incidents"]["by_kind"]]).groupby("kind", sort=False)
    g = pooled[["n_events", "n_incidents", "tp"]].sum()
    g["precision"] = g["tp"] / g["n_incidents"].where(g["n_incidents"] > 0)
    g["recall"] = g["tp"] / g["n_events"].where(g["n_events"] > 0)
    g["f1"] = 2 * g["precision"] * g["recall"] / (g["precision"] + g["recall"])
    g["ttd_median_min"] = pooled["ttd_median_min"].median()
    print("incidents per kind (pooled over seeds and noise levels):")
    print(g.round(3).to_string())


def _line(name: str, s: dict[str, Any]) -> str:
    return (f"  {name:<28} P={s['precision']:.3f} R={s['recall']:.3f} F1={s['f1']:.3f} "
            f"(detected {s['n_detected']}, truth {s['n_truth']}, median time to detect {s['median_time_to_detect']})")


def run(args: argparse.Namespace) -> int:
    import warnings

    from workbench.synth import make_city

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    results = []
    if args.dataset or args.store:
        from workbench.io import open_city, read_city
        from workbench.synth import world_of

        city = open_city(args.dataset) if args.dataset else read_city(args.store)
        params = world_of(city).params
        twin = make_city(**{k: getattr(params, k) for k in ("zones", "sensors_per_system", "start", "days", "freq", "seed",
                                                             "event_scale", "noise")}, fault_rate=args.fault_rate)
        results.append({"source": args.dataset or args.store, "seed": params.seed, "noise": params.noise,
                        **score_city(city, fault_city=twin, threshold=args.threshold, tolerance=args.tolerance)})
    else:
        for noise in args.noise:
            for seed in args.seeds:
                size = dict(zones=args.zones, sensors_per_system=args.sensors, days=args.days, seed=seed, noise=noise)
                city = make_city(**size)
                twin = make_city(**size, fault_rate=args.fault_rate)
                res = {"source": "synth", "seed": seed, "noise": noise,
                       **score_city(city, fault_city=twin, threshold=args.threshold, tolerance=args.tolerance)}
                if args.incidents:
                    res["incidents"] = incident_scores(city, size, tolerance=args.tolerance)
                results.append(res)
                if not args.json:
                    print(f"seed {seed}, noise {noise}:")
                    print(_line("fault flags", res["faults"]))
                    for k in res["faults_by_kind"]:
                        print(f"    {k['kind']:<10} P={k['precision']:.3f} R={k['recall']:.3f} F1={k['f1']:.3f} (truth {k['n_truth']})")
                    print(_line("sensor anomalies (events)", res["anomalies"]))
                    print(_line("  without services", res["anomalies_without_services"]))
                    for k in res["anomalies_by_system"]:
                        print(f"    {k['system']:<14} P={k['precision']:.3f} R={k['recall']:.3f} (truth {k['n_truth']})")
                    for k in res["anomaly_recall_by_role"]:
                        print(f"    {k['role'] + ' rows':<14} R={k['recall']:.3f} (truth {k['n_truth']})")
                    if args.incidents:
                        _print_incidents(res["incidents"])
    if args.incidents and not args.json and not (args.dataset or args.store):
        _print_incident_summary(results)
    if args.json:
        print(json.dumps(results, indent=1, default=str))
    elif args.dataset or args.store:
        r = results[0]
        print(f"{r['source']} (seed {r['seed']}, noise {r['noise']}):")
        print(_line("fault flags", r["faults"]))
        print(_line("sensor anomalies (events)", r["anomalies"]))
    return 0
