"""``workbench bench``: the benchmark suite (the same code as ``make bench``).

Runs every scenario of ``benchmarks/bench_*.py`` in a source checkout — each in its own
subprocess, with the floors measured in the same run — writes ``benchmarks/results/*.json``
and prints a Markdown table (or the rows as JSON with ``--json``). See ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "main"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="run the speed and memory benchmarks", description=__doc__.split("\n\n")[1])
    p.add_argument("--json", action="store_true", help="print the result rows as JSON on stdout")
    p.add_argument("--quick", action="store_true", help="small scenarios only, written under benchmarks/results/tmp/quick")
    p.add_argument("--only", action="append", metavar="STAGE", help="only this stage (repeat or comma-separate)")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed per measurement subprocess")
    p.set_defaults(func=main)


def _checkout() -> Path | None:
    import workbench

    root = Path(workbench.__file__).resolve().parents[1]
    return root if (root / "benchmarks" / "_harness.py").is_file() else None


def main(args: argparse.Namespace) -> int:
    root = _checkout()
    if root is None:
        print("workbench bench: the benchmarks/ folder was not found next to the workbench package; "
              "run it from a source checkout (pip install -e .).", file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.run import main as run_main

    argv = (["--json"] if args.json else []) + (["--quick"] if args.quick else [])
    for stage in args.only or []:
        argv += ["--only", stage]
    if args.timeout:
        argv += ["--timeout", str(args.timeout)]
    return run_main(argv)
