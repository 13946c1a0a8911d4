"""The README's summary table: every stage of issue 7 at each size, from ``benchmarks/results/``.

``python -m benchmarks.summary`` prints it (Markdown). Rows come from the suite's JSON files
as they were last written; a stage never measured is listed as such, not left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks._harness import RESULTS

#: (results file, stage) in the order of the pipeline
STAGES = (
    ("bench_perception.json", "quality_flags"),
    ("bench_perception.json", "anomaly_scores"),
    ("bench_analysis.json", "profile"),
    ("bench_analysis.json", "to_zones"),
    ("bench_integration.json", "city_state"),
    ("bench_integration.json", "incidents"),
    ("bench_pipeline.json", "pipeline"),
)
SIZES = (1_000, 10_000)


def _rows(name: str, results: Path) -> list[dict[str, Any]]:
    path = results / name
    return json.loads(path.read_text()) if path.exists() else []


def _num(v: Any, digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def _ratio(v: Any, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}×"


def table(results: Path = RESULTS) -> str:
    """The Markdown table (one row per stage, size and scheduler)."""
    out = ["| stage | sensors × days | scheduler | seconds | CPU s | peak RSS MB | peak / input | vs pandas | vs floor | commit |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, stage in STAGES:
        rows = [r for r in _rows(name, results) if r.get("stage") == stage and r.get("days") == 365]
        for n in SIZES:
            got = sorted((r for r in rows if r.get("sensors") == n), key=lambda r: r.get("scheduler") != "threads")
            if not got:
                out.append(f"| {stage} | {n:,} × 365 | — | not measured | | | | | | |")
            for r in got:
                if r.get("error"):
                    out.append(f"| {stage} | {n:,} × 365 | {r.get('scheduler')} | failed: {r['error'][:60]} | | | | | | |")
                    continue
                scaled = " (scaled)" if r.get("pandas_scaled") else ""
                floor = f"{_ratio(r.get('vs_floor'))} {r.get('floor')}" if r.get("vs_floor") else "—"
                commit = (r.get("commit") or "—") + (" +dirty" if r.get("dirty") else "")
                out.append(f"| {stage} | {n:,} × 365 | {r.get('scheduler', 'threads')} | {_num(r.get('seconds'), 2)} "
                           f"| {_num(r.get('cpu_s'))} | {_num(r.get('peak_rss_mb'), 0)} | {_num(r.get('mem_ratio'), 3)} "
                           f"| {_ratio(r.get('vs_pandas'))}{scaled} | {floor} | {commit} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table())
