"""``workbench run``: the integration pipeline on a city store, every output written to a folder."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="city state, index, incidents and alerts for a city store, written to a folder",
        description="Run the integration loop on STORE (a .zarr/.nc city store, or a catalog name such as "
        "'reference') and write to DIR: state.zarr, tables/ (Parquet and CSV), alerts/ (CAP 1.2 XML and "
        "Smart Data Models JSON), report.html, provenance.json and manifest.json.",
    )
    p.add_argument("store", metavar="STORE", help="city store path (.zarr or .nc) or catalog name")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--freq", default="1h", help="interval of the city state and index (default: 1h)")
    p.add_argument("--rules", default=None, metavar="FILE", help="response rules YAML (default: the built-in rules.yml)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="dask scheduler: threads, synchronous, processes or a tcp:// address (default: local threads "
                   "or DASK_SCHEDULER_ADDRESS)")
    p.add_argument("--no-anomalies", action="store_true",
                   help="skip per-sensor anomaly detection (faster; no sensor_fault incidents, less evidence)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.integration.pipeline import run
    from workbench.integration.rules import RuleError

    store = Path(args.store)
    if not store.exists() and (store.suffix in (".zarr", ".nc") or "/" in args.store):
        print(f"workbench run: {args.store}: no such city store.", file=sys.stderr)
        return 2
    try:
        res = run(args.store, freq=args.freq, rules=args.rules, scheduler=args.scheduler,
                  anomalies=False if args.no_anomalies else None, progress=not args.quiet)
    except RuleError as exc:
        print(f"workbench run: {exc}", file=sys.stderr)
        return 2
    paths = res.write(args.out, progress=not args.quiet)
    n_inc = int((res.incidents["kind"] != "sensor_fault").sum())
    n_fault = int((res.incidents["kind"] == "sensor_fault").sum())
    print(f"{n_inc} incidents, {n_fault} sensor faults, {len(res.alerts)} alerts; "
          f"mean city index {float(res.index['index'].mean()):.1f}")
    print(f"wrote {Path(args.out)} (report: {paths['report']})")
    return 0
