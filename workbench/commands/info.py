"""``workbench info``: a summary of any city store or catalogued dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="summarise a city store or catalogued dataset",
        description="Systems, sensors, time span and completeness of a store (.zarr/.nc) or a catalog name.",
    )
    p.add_argument("source", help="a store path or a dataset name from datasets/catalog.yml")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from workbench.io.catalog import CatalogError, open_city
    from workbench.io.store import StoreError, read_city
    from workbench.io.summary import summarise

    try:
        city = read_city(args.source) if Path(args.source).suffix else open_city(args.source)
    except (CatalogError, StoreError, FileNotFoundError) as exc:
        print(f"workbench info: {exc}", file=sys.stderr)
        return 2
    info = summarise(city)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.source}: {info.get('title') or 'city'} — {info.get('zones', '?')} zones")
    for name, s in info["systems"].items():
        print(f"  /{name}: {s['sensors']} sensors in {s['zones']} zones, {s['start']} … {s['end']} ({s['freq'] or '?'})")
        for var, v in s["variables"].items():
            print(f"      {var:<18} [{v['units']}]  completeness {100 * v['completeness']:.1f} %")
    return 0
