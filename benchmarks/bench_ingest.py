"""Benchmark: ingest of a long CSV (1 M and 10 M rows) against pandas and against one numpy pass.

Two ways to run it:

- ``make bench`` (``benchmarks/run.py``) picks up :data:`SCENARIOS` (stage ``ingest_long_csv``,
  the harness's interface, docs/benchmarks.md): workbench and pandas in their own
  subprocesses, ``vs_pandas``, peak memory, cold start. The harness's floors are for Zarr
  stores, so those rows have no ``vs_floor``.
- ``python benchmarks/bench_ingest.py`` measures the three scenarios below for 1 M and 10 M
  rows, the floor included, and writes ``benchmarks/results/ingest.json``.

Scenarios, each in its own subprocess:

``workbench``
    ``workbench.io.read_observations(path)``: stream, validate, convert units, quarantine,
    de-duplicate and build the ``(sensor, time)`` cube (the full ingest, report included).
``pandas``
    The plain pandas way: ``pd.read_csv(path)``, ``pd.to_datetime(time, format="ISO8601",
    utc=True)``, ``DataFrame.pivot_table(index="sensor", columns="time", values="value")``
    -- no validation, no units, no report.
``floor``
    One numpy pass over the same bytes: the file is read in 16 MiB blocks into one reused
    buffer (``readinto``) and each block summed as ``uint64`` words (``np.add.reduce``, one
    thread). This is the cost of touching every byte once from the page cache with bounded
    memory; the cache is warm (the file was just written or read).

Before timing, each process makes one untimed warm-up call on the first 2,000 lines of the same
file (registry, pint and first-call costs; the harness reports these as ``cold_start_s``).
Peak memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end minus the same value
after the imports and the warm-up. Times are wall-clock seconds (``cpu_seconds`` beside them:
the machine is shared). Ratios follow the harness: ``vs_pandas = pandas seconds / seconds``
(above 1 the workbench is faster), ``vs_floor = seconds / floor seconds``, and
``mem_vs_pandas = peak / pandas peak``.

The CSV (``sensor,time,variable,value,unit,lat,lon,zone``, ISO 8601 UTC times, values to
three decimals, in :func:`workbench.io.to_long` order: sensor by sensor) is generated once,
in its own subprocess, from the reference city's energy system (``make_city(zones=20,
sensors_per_system=143, days=...)``, 143 feeders at 15 min, cut to exactly the row count)
and cached in ``benchmarks/results/tmp/`` (git-ignored).

Usage::

    nice .venv/bin/python benchmarks/bench_ingest.py            # 1 M and 10 M rows
    nice .venv/bin/python benchmarks/bench_ingest.py --rows 1000000 --repeat 3

Results: ``benchmarks/results/ingest.json``, rows ``stage, rows, seconds, rows_per_s,
peak_rss_mb, vs_pandas, vs_floor`` plus ``seconds_median, cpu_seconds, repeats,
mem_vs_pandas, input_mb, cube_mb, mem_per_input``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TMP = RESULTS / "tmp"
SENSORS = 143
STEPS_PER_DAY = 96
MODES = ("floor", "pandas", "workbench")


def csv_path(rows: int) -> Path:
    return TMP / f"long_{rows}.csv"  # ``long_{rows}_warmup.csv`` beside it: its first lines


def make_csv(rows: int) -> Path:
    """Write (once) a long CSV of exactly ``rows`` readings from the reference city's energy node."""
    path = csv_path(rows)
    if path.exists():
        return path
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import xarray as xr

    from workbench.io import to_long
    from workbench.synth import make_city

    TMP.mkdir(parents=True, exist_ok=True)
    days = math.ceil(rows / (SENSORS * STEPS_PER_DAY)) + 1  # +1: gaps injected as faults are dropped
    node = make_city(zones=20, sensors_per_system=SENSORS, days=days)["energy"].to_dataset()
    tmp = path.with_suffix(".csv.tmp-write")
    written = 0
    with pacsv.CSVWriter(tmp, pa.schema([(c, pa.string()) for c in ("sensor", "time", "variable", "value", "unit", "lat", "lon", "zone")]),
                         write_options=pacsv.WriteOptions(quoting_style="none")) as w:
        for lo in range(0, SENSORS, 8):
            part = node.isel(sensor=slice(lo, lo + 8)).compute()
            long = to_long(xr.DataTree.from_dict({"/energy": part}))
            long = long.iloc[: rows - written]
            table = pa.table({
                "sensor": pa.array(long["sensor"].to_numpy(dtype=object), pa.string()),
                "time": pa.array(long["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(dtype=object), pa.string()),
                "variable": pa.array(long["variable"].to_numpy(dtype=object), pa.string()),
                "value": pa.array(np.char.mod("%.3f", long["value"].to_numpy()).astype(object), pa.string()),
                "unit": pa.array(long["unit"].to_numpy(dtype=object), pa.string()),
                "lat": pa.array(np.char.mod("%.5f", long["lat"].to_numpy()).astype(object), pa.string()),
                "lon": pa.array(np.char.mod("%.5f", long["lon"].to_numpy()).astype(object), pa.string()),
                "zone": pa.array(long["zone"].to_numpy(dtype=object), pa.string()),
            })
            w.write_table(table)
            written += len(long)
            if written >= rows:
                break
    if written < rows:
        raise RuntimeError(f"only {written} rows generated, wanted {rows}")
    tmp.rename(path)
    return path


def ensure_csv(rows: int) -> Path:
    """The cached CSV of ``rows`` rows, generated (once) in its own subprocess."""
    path = csv_path(rows)
    if not path.exists():
        print(f"  generating the {rows:,}-row long CSV -> {path}", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "--prepare", str(rows)], check=True, env=_env())
    return path


def rows_for(sensors: int, days: int) -> int:
    """Rows of the CSV for a harness size: 143 sensors × 73 / 729 days are the 1 M / 10 M files."""
    return {(SENSORS, 73): 1_000_000, (SENSORS, 729): 10_000_000}.get((sensors, days), sensors * STEPS_PER_DAY * days)


# -- the harness's interface (benchmarks/_harness.py, docs/benchmarks.md) -----------------------
def _harness_path(ctx) -> Path:
    return ensure_csv(rows_for(ctx.sensors, ctx.days))


def _ingest(ctx):
    from workbench.io import read_observations

    cube, report = read_observations(_harness_path(ctx))
    assert report.n_in == report.n_accepted + report.n_quarantined
    return cube


def _ingest_pandas(ctx):
    import pandas as pd

    df = pd.read_csv(_harness_path(ctx))
    df["time"] = pd.to_datetime(df["time"], format="ISO8601", utc=True)
    return df.pivot_table(index="sensor", columns="time", values="value")


try:
    from benchmarks._harness import Scenario
except ImportError:  # run as a script without the harness
    SCENARIOS: list = []
else:
    SCENARIOS = [
        Scenario(stage="ingest_long_csv", sensors=SENSORS, days=days, run=_ingest, pandas=_ingest_pandas, floor=None,
                 quick=(days == 73), note=f"{rows_for(SENSORS, days):,}-row long CSV of one system (143 sensors); "
                 "floor (one numpy pass over the bytes) in results/ingest.json")
        for days in (73, 729)
    ]


# -- scenarios (run in a child process) --------------------------------------------------------
def _warmup_csv(path: Path, lines: int = 2000) -> Path:
    """The first ``lines`` lines of ``path`` (a tiny CSV for the untimed warm-up call)."""
    small = path.with_name(path.stem + "_warmup.csv")
    if not small.exists():
        with open(path, "rb") as src, open(small, "wb") as dst:
            for _, line in zip(range(lines), src):
                dst.write(line)
    return small


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _scenario(name: str, path: Path) -> dict:
    import numpy as np
    import pandas as pd

    small = _warmup_csv(path)
    if name == "workbench":
        from workbench.io import read_observations

        read_observations(small)  # warm-up: registry, pint, first-call costs (cold start excluded)
    elif name == "pandas":
        pd.read_csv(small).pivot_table(index="sensor", columns="time", values="value")
    base = _maxrss_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    out: dict = {}
    if name == "floor":
        buf = bytearray(16 << 20)
        view = memoryview(buf)
        total = np.uint64(0)
        with open(path, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                words = np.frombuffer(view[: n - n % 8], dtype=np.uint64)
                total += np.add.reduce(words)
        out["checksum"] = int(total)
    elif name == "pandas":
        df = pd.read_csv(path)
        df["time"] = pd.to_datetime(df["time"], format="ISO8601", utc=True)
        cube = df.pivot_table(index="sensor", columns="time", values="value")
        out["rows_in"] = len(df)
        out["cube_shape"] = list(cube.shape)
        out["cube_mb"] = cube.to_numpy().nbytes / 2**20
    else:
        cube, report = read_observations(path)
        assert report.n_in == report.n_accepted + report.n_quarantined
        da = cube["energy"]["electric_load"]
        out["rows_in"] = report.n_in
        out["n_accepted"] = report.n_accepted
        out["cube_shape"] = list(da.shape)
        out["cube_mb"] = da.nbytes / 2**20
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time() - c0
    out["peak_rss_mb"] = max(_maxrss_mb() - base, 0.0)
    return out


def _env() -> dict:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # PERFORMANCE.md 13: only inside benchmarks
        env.pop(var, None)
    return env


def _run_child(name: str, path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--scenario", name, "--csv", str(path)],
                          capture_output=True, text=True, env=_env(), check=False)
    if proc.returncode:
        raise RuntimeError(f"scenario {name} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(rows: int, *, repeat: int = 1, scenarios: tuple[str, ...] = MODES) -> list[dict]:
    """Run each scenario ``repeat`` times on the ``rows``-row CSV; one result row per scenario."""
    path = ensure_csv(rows)
    size_mb = path.stat().st_size / 2**20
    runs: dict[str, list[dict]] = {s: [] for s in scenarios}
    for _ in range(repeat):
        for s in scenarios:
            runs[s].append(_run_child(s, path))
            print(f"  {rows:>10,} {s:<10} {runs[s][-1]['seconds']:8.2f} s  {runs[s][-1]['peak_rss_mb']:8.1f} MB", flush=True)
    best = {s: min(r["seconds"] for r in runs[s]) for s in scenarios}
    out = []
    for s in scenarios:
        peak = max(r["peak_rss_mb"] for r in runs[s])
        row = {
            "stage": f"ingest_long_csv/{s}",
            "rows": rows,
            "seconds": round(best[s], 3),
            "seconds_median": round(statistics.median(r["seconds"] for r in runs[s]), 3),
            "cpu_seconds": round(min(r["cpu_seconds"] for r in runs[s]), 3),
            "repeats": len(runs[s]),
            "rows_per_s": round(rows / best[s]),
            "peak_rss_mb": round(peak, 1),
            "vs_pandas": round(best["pandas"] / best[s], 3) if "pandas" in best else None,
            "vs_floor": round(best[s] / best["floor"], 3) if "floor" in best else None,
            "mem_vs_pandas": round(peak / max(r["peak_rss_mb"] for r in runs["pandas"]), 3) if "pandas" in runs else None,
            "input_mb": round(size_mb, 1),
            "cube_mb": round(runs[s][0].get("cube_mb", 0.0), 1),
            "mem_per_input": round(peak / size_mb, 3),
        }
        out.append(row)
    return out


def environment() -> dict:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    try:
        from threadpoolctl import threadpool_info

        pools = [{k: p.get(k) for k in ("internal_api", "num_threads")} for p in threadpool_info()]
    except ImportError:
        pools = []
    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "pyarrow": pa.__version__, "cpus": os.cpu_count(), "threadpools": pools,
            "page_cache": "warm (file read or written just before)", "machine": platform.machine()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    p.add_argument("--repeat", type=int, default=None, help="repeats per scenario (default 3 below 5 M rows, else 1)")
    p.add_argument("--only", nargs="*", choices=MODES, default=list(MODES))
    p.add_argument("--out", type=Path, default=RESULTS / "ingest.json")
    p.add_argument("--scenario", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.prepare:
        make_csv(a.prepare)
        return 0
    if a.scenario:
        print(json.dumps(_scenario(a.scenario, a.csv)))
        return 0
    rows_out = []
    for n in a.rows:
        rows_out += measure(n, repeat=a.repeat or (3 if n < 5_000_000 else 1), scenarios=tuple(a.only))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"benchmark": "ingest", "environment": environment(), "rows": rows_out}, indent=2) + "\n")
    for r in rows_out:
        print(f"{r['stage']:<28} {r['rows']:>11,} {r['seconds']:8.2f} s {r['rows_per_s']:>11,} rows/s "
              f"{r['peak_rss_mb']:8.1f} MB  vs_pandas {r['vs_pandas']}  vs_floor {r['vs_floor']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
