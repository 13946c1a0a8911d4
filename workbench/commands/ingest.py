"""``workbench ingest SOURCE --out STORE``: read a feed, write the cube and the quarantine.

Prints the :class:`~workbench.io.IngestReport` (JSON with ``--json``), writes the cube with
:func:`workbench.io.store.write_city` and the quarantined rows as Parquet beside the store
(``<store stem>.quarantine.parquet``). Exit code 0 when at least one record was accepted,
1 when nothing could be read (a :class:`~workbench.io.ReadError`, or no record accepted).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run", "quarantine_path"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest`` subcommand."""
    from workbench.io.observations import FORMATS

    p = subparsers.add_parser("ingest", help="read a feed into a cube store, with a report of what was kept")
    p.add_argument("source", help="file path or SensorThings URL")
    p.add_argument("--out", required=True, help="output store (Zarr directory, or .nc)")
    p.add_argument("--format", choices=FORMATS, default=None, help="input format (detected when omitted)")
    p.add_argument("--mapping", default=None, help="long format: preset name or JSON column mapping")
    p.add_argument("--zones", default=None, help="Open311: GeoJSON FeatureCollection file of zone polygons")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def quarantine_path(store: str | Path) -> Path:
    """Where the quarantined rows of ``store`` go: ``<stem>.quarantine.parquet`` beside it."""
    store = Path(store)
    return store.with_name(f"{store.stem}.quarantine.parquet")


def run(args: argparse.Namespace) -> int:
    """Ingest ``args.source`` into ``args.out``; the exit code."""
    from workbench.io.observations import read_observations
    from workbench.io.report import ReadError
    from workbench.io.store import write_city

    mapping = args.mapping
    if mapping and mapping.lstrip().startswith("{"):
        mapping = json.loads(mapping)
    kw = {"zones": args.zones} if args.zones else {}
    try:
        cube, report = read_observations(args.source, format=args.format, mapping=mapping, **kw)
    except ReadError as exc:
        print(json.dumps({"error": str(exc)}) if args.json else f"workbench ingest: {exc}", file=sys.stderr)
        return 1
    qpath = report.write(quarantine_path(args.out))
    if report.n_accepted:
        write_city(cube, args.out)
    if args.json:
        print(json.dumps({**report.to_dict(), "store": str(args.out) if report.n_accepted else None, "quarantine": str(qpath)}, indent=2))
    else:
        print(report.summary())
        print(f"cube        {args.out if report.n_accepted else '(nothing written)'}")
        print(f"quarantine  {qpath}")
    return 0 if report.n_accepted else 1
