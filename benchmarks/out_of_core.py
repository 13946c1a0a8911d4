"""Out of core (issue 7): ``workbench run`` on a city bigger than the memory it is given.

Runs the command line ``workbench run STORE --out DIR`` in a child process inside a hard
memory limit — a Linux memory cgroup (v2 ``memory.max`` or v1 ``memory.limit_in_bytes``; it
needs root) — so the run completes within it or is killed by the kernel. Reports the wall
time, the child's peak RSS (``getrusage`` of the child), the cgroup's peak of anonymous
memory (sampled; page cache excluded) and its own peak counter (page cache included, so it
sits at the limit for a store bigger than the limit), the input size, and checks that the
outputs are complete (every file of ``manifest.json`` present with its hash, the state's time
axis spans the whole record, every state variable has values).

Usage (generate the city first with ``workbench generate --out STORE --days 1095 ...``)::

    python -m benchmarks.out_of_core STORE --out DIR [--memory-gib 4] [--json ROWS.json] [--commit SHA]
    python -m benchmarks.out_of_core STORE --out DIR --phases   # step by step, no limit: where memory goes

``--commit`` runs the library of that commit (a ``git archive`` snapshot on ``PYTHONPATH``)
instead of the checkout's.

The row is appended to ``--json`` (default ``benchmarks/results/out_of_core.json``).
See ``docs/scale.md``, "Measured at scale".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CGROUP = Path("/sys/fs/cgroup")

__all__ = ["MemoryCgroup", "main", "check_outputs"]


class MemoryCgroup:
    """A memory cgroup with a hard limit (v2 if the memory controller is there, else v1)."""

    def __init__(self, name: str, limit_bytes: int):
        v2 = CGROUP / "cgroup.controllers"
        if v2.exists() and "memory" in v2.read_text().split():
            self.version, self.path = 2, CGROUP / name
        elif (CGROUP / "memory").is_dir():
            self.version, self.path = 1, CGROUP / "memory" / name
        else:
            raise RuntimeError("no memory cgroup controller found")
        self.path.mkdir(exist_ok=True)
        if self.version == 2:
            (self.path / "memory.max").write_text(str(limit_bytes))
            (self.path / "memory.swap.max").write_text("0") if (self.path / "memory.swap.max").exists() else None
        else:
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        self.limit = limit_bytes

    def enter(self) -> None:
        """Move the calling process into the cgroup (used as ``preexec_fn``)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def anon_bytes(self) -> int:
        """Anonymous memory charged to the cgroup now (RSS without the page cache)."""
        stat = dict(line.split() for line in (self.path / "memory.stat").read_text().splitlines() if len(line.split()) == 2)
        return int(stat.get("anon" if self.version == 2 else "total_rss", stat.get("rss", 0)))

    def peak_bytes(self) -> int | None:
        """The cgroup's own peak counter (page cache included)."""
        f = self.path / ("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes")
        return int(f.read_text()) if f.exists() else None

    def events(self) -> dict[str, int]:
        """OOM / limit events (v2 ``memory.events``; v1 ``failcnt`` and ``oom_control``)."""
        if self.version == 2:
            return {k: int(v) for k, v in (line.split() for line in (self.path / "memory.events").read_text().splitlines())}
        out = {"failcnt": int((self.path / "memory.failcnt").read_text())}
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            k, v = line.split()
            out[k] = int(v)
        return out

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass


def input_bytes(store: Path) -> int:
    """float64 bytes of the city's system variables (what a full load would take)."""
    from workbench import registry
    from workbench.io import read_city

    tree = read_city(store)
    return int(sum(v.nbytes for n in tree.children if n in registry.SYSTEMS for v in tree[n].data_vars.values()))


def check_outputs(out: Path, days: int) -> dict[str, Any]:
    """Is the run's output complete? Every manifest file present with its hash; the state's
    time axis spans the record (``days`` × 24 hourly steps); every state variable has values."""
    import xarray as xr

    from workbench.integration.pipeline import input_hash

    manifest = json.loads((out / "manifest.json").read_text())
    bad = [p for p, h in manifest["outputs"].items() if not (out / p.rstrip("/")).exists() or input_hash(out / p.rstrip("/")) != h]
    tree = xr.open_datatree(out / "state.zarr", engine="zarr", consolidated=False)
    state, index = tree["state"].to_dataset(), tree["index"].to_dataset()
    empty = [v for ds in (state, index) for v in ds.data_vars if int(ds[v].count().compute()) == 0]  # boundary: a check
    counts = manifest["provenance"].get("counts", {})
    steps = int(state.sizes["time"])
    return {"files": len(manifest["outputs"]), "files_missing_or_changed": bad, "state_steps": steps,
            "state_steps_expected": days * 24, "state_zones": int(state.sizes["zone"]), "state_variables": len(state.data_vars),
            "index_steps": int(index.sizes["time"]), "variables_empty": empty, "incidents": counts.get("incidents"),
            "alerts": counts.get("alerts"),
            "complete": not bad and not empty and steps == days * 24 and int(index.sizes["time"]) == steps}


def phases(store: Path, *, warm: bool = False) -> list[dict[str, Any]]:
    """``workbench.run``'s steps one by one in this process (no memory limit): per step the
    resident set after it (C heap trimmed), its peak (sampled every 50 ms), the seconds, and
    what the products weigh — where the memory of a run goes. ``warm``: first a
    ``workbench.run`` of a tiny city (JIT and caches loaded, as the benchmark suite's warm-up)."""
    import gc

    import dask

    from workbench._memory import trim
    from workbench._options import scheduler_context
    from workbench.integration import pipeline as pl
    from workbench.integration._anomalies import gather_anomalies
    from workbench.integration.incidents import detect_incidents, zone_signals
    from workbench.integration.index import city_index
    from workbench.integration.rules import load_rules, respond
    from workbench.integration.state import city_state

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    peak, stop, rows, clock = [rss()], threading.Event(), [], [time.perf_counter()]

    def sample():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss())

    def mark(step: str, **products: Any) -> None:
        trim()
        now = rss()
        rows.append({"step": step, "rss_mb": round(now / 1e6), "peak_mb": round(max(peak[0], now) / 1e6),
                     "seconds": round(time.perf_counter() - clock[0], 1),
                     **{k: round(v / 1e6, 1) if isinstance(v, float) else v for k, v in products.items()}})
        print(rows[-1], file=sys.stderr, flush=True)
        peak[0], clock[0] = now, time.perf_counter()

    def parts_mb(parts: list) -> float:
        return float(sum(a.nbytes for p in parts if isinstance(p, list) for r in p
                         for a in (r.pos, r.first, r.last, r.severity, r.score)))

    threading.Thread(target=sample, daemon=True).start()
    mark("imports")
    if warm:
        import workbench
        from workbench.synth import make_city

        workbench.run(make_city(zones=4, sensors_per_system=10, days=7), progress=False)
        mark("warm-up run (tiny city)")
    tree, _ = pl._open(store)
    with scheduler_context(None, progress=False):
        state, signals, lazy = city_state(tree, freq="1h"), zone_signals(tree), pl._lazy_anomalies(tree)
        mark("graphs built", tasks_anomalies=len(lazy))
        compute = getattr(pl, "compute_by_source", None)
        state, signals, parts = compute(tree, state, signals, lazy) if compute else dask.compute(state, signals, lazy)
        runs = [r for p in parts if isinstance(p, list) for r in p]
        mark("compute", state_mb=float(state.nbytes), signals_mb=float(signals.nbytes), run_parts_mb=parts_mb(parts),
             runs=sum(len(r) for r in runs), weak_runs=sum(len(r) for r in runs if r.weak))
        index = city_index(state)
        mark("index", index_mb=float(index.nbytes))
        an = gather_anomalies(parts)
        del parts, runs
        gc.collect()
        mark("gather_anomalies", anomalies=len(an), anomalies_mb=float(an.memory_usage(deep=True).sum()))
        inc = detect_incidents(tree, anomalies=an, signals=signals)
        mark("detect_incidents", incidents=len(inc))
        respond(state, inc, rules=load_rules(None), index=index)
        mark("respond")
    stop.set()
    return rows


def _relative(line: str, snapshot: Path | None) -> str:
    """``line`` without this machine's paths (results are committed)."""
    if snapshot is not None:
        line = line.replace(str(snapshot), "<snapshot>")
    return line.replace(str(ROOT), "<checkout>")


def _library(stderr: str, snapshot: Path | None) -> str | None:
    """Which library the child imported: the commit's snapshot or the checkout."""
    lib = next((ln for ln in stderr.splitlines() if ln.endswith("__init__.py")), None)
    return None if lib is None else _relative(lib, snapshot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.out_of_core", description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="output folder of workbench run (replaced)")
    parser.add_argument("--memory-gib", type=float, default=4.0)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "out_of_core.json")
    parser.add_argument("--note", default="")
    parser.add_argument("--commit", default=None, help="run the library of this commit (a git archive snapshot)")
    parser.add_argument("--phases", action="store_true",
                        help="instead: run the pipeline's steps in this process without a limit and print where memory goes")
    parser.add_argument("--warm", action="store_true", help="with --phases: a warm-up run on a tiny city first")
    args = parser.parse_args(argv)
    args.store, args.out = args.store.resolve(), args.out.resolve()
    if args.phases:
        print(json.dumps(phases(args.store, warm=args.warm), indent=1))
        return 0

    from workbench.io import read_city

    tree = read_city(args.store)
    first = next(n for n in tree.children if "time" in tree[n].dims)
    ntime = tree[first].sizes["time"]
    days = int(round(ntime / 96))
    sensors = sum(tree[n].sizes.get("sensor", 0) for n in tree.children if n != "zones")
    chunk_mb = max(v.data.chunksize[0] * v.data.chunksize[1] * 8 / 1e6 for n in tree.children if n != "zones"
                   for v in tree[n].data_vars.values() if v.ndim == 2)
    nbytes = input_bytes(args.store)
    del tree
    if args.out.exists():
        shutil.rmtree(args.out)
    limit = int(args.memory_gib * 2**30)
    cg = MemoryCgroup(f"workbench-ooc-{os.getpid()}", limit)
    peak_anon = [0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            try:
                peak_anon[0] = max(peak_anon[0], cg.anon_bytes())
            except OSError:
                pass

    load_start = os.getloadavg()
    env = dict(os.environ)
    snapshot = None
    if args.commit:
        import tempfile

        snapshot = Path(tempfile.mkdtemp(prefix=f"workbench-{args.commit}-"))
        archive = subprocess.run(["git", "archive", args.commit], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(snapshot)], input=archive, check=True)
        env["PYTHONPATH"] = os.pathsep.join([str(snapshot), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-c", "import sys, workbench.cli; sys.argv[0] = 'workbench'; print(workbench.__file__, file=sys.stderr); "
           "sys.exit(workbench.cli.main())", "run", str(args.store), "--out", str(args.out), "--quiet"]
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    # cwd: `python -c` puts it first on sys.path, before PYTHONPATH
    proc = subprocess.run(cmd, preexec_fn=cg.enter, capture_output=True, text=True, env=env, cwd=snapshot or ROOT)
    wall = time.perf_counter() - t
    stop.set()
    sampler.join()
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    row: dict[str, Any] = {
        "stage": "workbench run (out of core)", "sensors": sensors, "days": days, "input_mb": round(nbytes / 1e6, 1),
        "store_chunk_mb": round(chunk_mb, 1), "memory_limit_gib": args.memory_gib, "cgroup": f"v{cg.version}",
        "seconds": round(wall, 1), "returncode": proc.returncode, "peak_rss_mb": round(child.ru_maxrss / 1024, 1),
        "cpu_s": round(child.ru_utime + child.ru_stime, 1), "cgroup_peak_anon_mb": round(peak_anon[0] / 2**20, 1),
        "cgroup_peak_with_cache_mb": round((cg.peak_bytes() or 0) / 2**20, 1), "cgroup_events": cg.events(),
        "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "commit": args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                                text=True).stdout.strip(),
        "library": _library(proc.stderr, snapshot),
        "note": args.note,
    }
    row["peak_over_input"] = round(row["peak_rss_mb"] * 2**20 / nbytes, 3)
    cg.remove()
    if proc.returncode == 0:
        row["outputs"] = check_outputs(args.out, days)
    else:
        row["stderr_tail"] = [_relative(ln, snapshot) for ln in proc.stderr.strip().splitlines()[-8:]]
    if snapshot is not None:
        shutil.rmtree(snapshot, ignore_errors=True)
    print(json.dumps(row, indent=1))
    rows = json.loads(args.json.read_text()) if args.json.exists() else []
    args.json.write_text(json.dumps(rows + [row], indent=1) + "\n")
    return 0 if proc.returncode == 0 and row.get("outputs", {}).get("complete") else 1


if __name__ == "__main__":
    sys.exit(main())
