"""``workbench generate``: build a reference city and write it to a store."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="build a reference city (cached catalog entry, or a store of your own size)",
        description="Build a reference city. With --dataset (default 'reference') the catalog entry is "
        "generated once and cached; with --out the city is built with the given size and written there.",
    )
    p.add_argument("--dataset", default=None, help="catalog name to generate and cache (default: reference)")
    p.add_argument("--out", default=None, help="write a city to this store (.zarr or .nc) instead")
    p.add_argument("--zones", type=int, default=12)
    p.add_argument("--sensors-per-system", type=int, default=40)
    p.add_argument("--start", default="2026-07-06")
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--freq", default="15min")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--event-scale", type=float, default=1.0)
    p.add_argument("--noise", type=float, default=1.0)
    p.add_argument("--no-events", action="store_true", help="an event-free city")
    p.add_argument("--no-faults", action="store_true", help="a city without sensor faults")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.out:
        from workbench.io import write_city
        from workbench.synth import make_city

        city = make_city(
            zones=args.zones, sensors_per_system=args.sensors_per_system, start=args.start, days=args.days,
            freq=args.freq, seed=args.seed, event_scale=args.event_scale, noise=args.noise,
            events=not args.no_events, faults=not args.no_faults,
        )
        path = write_city(city, args.out, progress=not args.quiet)
        print(f"wrote {path}")
        return 0
    from workbench.io.catalog import CatalogError, cache_dir, open_city

    name = args.dataset or "reference"
    try:
        open_city(name, progress=not args.quiet)
    except CatalogError as exc:
        print(f"workbench generate: {exc}", file=sys.stderr)
        return 2
    print(f"dataset '{name}' is ready (cache: {cache_dir()})")
    return 0
