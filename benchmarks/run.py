"""``make bench``: run every ``benchmarks/bench_*.py`` scenario, write the results, print a table.

Usage::

    python -m benchmarks.run [--quick] [--only STAGE[,STAGE]] [--sensors N] [--json]

Rows go to ``benchmarks/results/<module>.json`` (a JSON list of rows with at least ``stage,
sensors, days, seconds, peak_rss_mb, vs_pandas, vs_floor``; a run with ``--only`` replaces just
those rows) and the machine description to ``benchmarks/results/environment.json``.
``--quick`` runs the small scenarios only and writes under ``benchmarks/results/tmp/quick/``
(git-ignored), so a developer's check never overwrites the suite's numbers. See
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import RESULTS, TMP, discover, environment, markdown_table, run_scenarios  # noqa: E402

__all__ = ["main", "run"]

_KEY = ("stage", "sensors", "days", "scheduler")


def _merge(path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old = json.loads(path.read_text()) if path.exists() else []
    fresh = {tuple(r.get(k) for k in _KEY) for r in rows}
    return [r for r in old if tuple(r.get(k) for k in _KEY) not in fresh] + rows


def run(*, quick: bool = False, only: list[str] | None = None, as_json: bool = False, timeout: float | None = None,
        sensors: list[int] | None = None) -> list[dict]:
    """Run the suite; returns the rows (also written to disk)."""
    log = (lambda msg: print(msg, file=sys.stderr)) if as_json else print
    scenarios = [item for item in discover(only=only, quick=quick) if not sensors or item[2].sensors in sensors]
    if not scenarios:
        log("no benchmark scenario matched" + (f" --only {','.join(only)}" if only else ""))
        return []
    log(f"{len(scenarios)} scenario(s), one subprocess each; cores: {os.cpu_count()}")
    out_dir = TMP / "quick" if quick else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "environment.json").write_text(json.dumps(environment(), indent=1, default=str) + "\n")

    def save(row: dict[str, Any]) -> None:  # each row as soon as it is measured
        path = out_dir / f"{row['module']}.json"
        path.write_text(json.dumps(_merge(path, [row]), indent=1, default=str) + "\n")

    rows = run_scenarios(scenarios, log=log, timeout=timeout, on_row=save)
    if as_json:
        print(json.dumps(rows, indent=1, default=str))
    else:
        print()
        print(markdown_table(rows))
        print(f"\nrows written to {out_dir}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small scenarios only (results under results/tmp/quick)")
    parser.add_argument("--only", action="append", default=None, metavar="STAGE",
                        help="only these stages (repeat, or comma-separate)")
    parser.add_argument("--sensors", type=int, action="append", default=None, metavar="N",
                        help="only the scenarios of this size (repeatable), e.g. --sensors 1000")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON on stdout (progress on stderr)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per subprocess")
    args = parser.parse_args(argv)
    only = [s for part in args.only for s in part.split(",") if s] if args.only else None
    rows = run(quick=args.quick, only=only, as_json=args.json, timeout=args.timeout, sensors=args.sensors)
    return 0 if rows and not any(r.get("error") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
