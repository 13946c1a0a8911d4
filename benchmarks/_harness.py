"""The benchmark harness: one subprocess per measurement, floors measured in the same run.

A benchmark module ``benchmarks/bench_<area>.py`` exposes ``SCENARIOS``, a list of
:class:`Scenario`. That is the whole interface (``docs/benchmarks.md``)::

    from benchmarks._harness import Scenario

    def _open(ctx):                      # untimed, once per process: lazy opens, paths
        return ctx.open()                # the reference city of this size, from Zarr

    def _flags(ctx):                     # timed: must finish the work (compute or write)
        return flag_city(ctx.state).compute()

    def _flags_pandas(ctx):              # the same stage in plain pandas, timed alike
        ...

    SCENARIOS = [
        Scenario(stage="flags", sensors=n, days=365, setup=_open, run=_flags,
                 pandas=_flags_pandas, floor="io", quick=(n == 1_000))
        for n in (1_000, 10_000)
    ]

For every scenario the harness, in a fresh subprocess each:

1. builds (once, cached in ``benchmarks/results/tmp/``, git-ignored) the reference city of
   that size as a Zarr store, in its own subprocess;
2. measures the floors for that store: the **I/O floor** (stream the store with dask and
   sum it, through Zarr and with ``read_city``'s direct chunk reads; the faster counts) and the **memory floor** (one ``np.add.reduce`` over the same bytes in memory,
   one thread), min of several repeats, warm page cache;
3. runs the scenario: imports, a warm-up call on a tiny city (numba JIT and first-call
   costs, reported as ``cold_start_s``), then ``setup`` and the timed ``run`` — once if it
   takes ≥ 1 s, else ≥ 5 times (min and median reported); peak RSS is
   ``ru_maxrss`` at the end minus ``ru_maxrss`` after the imports and the warm-up;
4. runs ``pandas`` the same way in another subprocess (``vs_pandas`` = pandas seconds /
   workbench seconds: above 1 the workbench is faster).

Thread counts are set explicitly in every subprocess (``OMP/OPENBLAS/MKL_NUM_THREADS=1``,
``NUMBA_NUM_THREADS`` = cores) and ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are
unset there only (PERFORMANCE.md pitfall 13); ``threadpoolctl.threadpool_info()`` is logged.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
RESULTS = BENCH_DIR / "results"
TMP = RESULTS / "tmp"

#: the size of the warm-up city (total sensors, days): enough to JIT every kernel — 40 sensors
#: a system over 12 zones, so the zone-mate kernels run too (70 left one sensor a zone, and
#: those kernels compiled inside the timed run when numba's cache was cold)
WARMUP = (280, 7)
#: sub-second runs are repeated at least this many times
MIN_REPEATS = 5
#: floors: repeats (min is reported)
FLOOR_REPEATS = 3

__all__ = ["Scenario", "Context", "discover", "run_scenarios", "markdown_table", "bench_env", "ROOT", "RESULTS", "TMP"]


@dataclass(frozen=True)
class Scenario:
    """One stage at one size.

    Parameters
    ----------
    stage
        Name in the results (``"flags"``, ``"pipeline"``…); ``--only`` selects by it.
    sensors, days
        Size of the reference city: total sensors over the seven systems, days at 15 min.
    run
        ``run(ctx)`` — the timed work; it must finish it (``.compute()``, a write…).
    setup
        ``setup(ctx)`` — untimed, once per process, before timing; its return value is
        ``ctx.state``. Keep it light (lazy opens): its memory counts in the peak.
    pandas
        ``pandas(ctx)`` — the same stage as plain pandas, timed in its own process.
    floor
        ``"io"`` (the stage reads the store: compare with streaming it) or ``"memory"``
        (the stage works on data in memory: compare with one numpy pass), or ``None``.
    scheduler
        ``None`` (local threads), ``"synchronous"``, or ``"distributed"``: a
        ``LocalCluster`` of 2 worker processes × 1 thread is started (untimed) in the
        scenario's process, and the workers' memory is sampled into the peak.
    pandas_max_sensors
        Run pandas at no more than this size; bigger sizes reuse that time scaled by the
        number of sensors (``pandas_scaled`` is then true in the row).
    pandas_variants
        Other pandas implementations, ``((name, fn), ...)``, each measured like ``pandas``
        (own subprocess, same size cap); the row gets ``<name>_seconds`` and ``vs_<name>``.
    repeats
        Force a number of timed runs (default: 1 if ≥ 1 s, else ``MIN_REPEATS``).
    quick
        Part of ``--quick`` (the small sizes a developer runs).
    warmup
        Warm up on a tiny city first (default True).
    years
        Informational (e.g. the out-of-core 3-year city).
    memory_limit_gib
        If set, the scenario's process runs under ``RLIMIT_AS`` of this many GiB (an
        out-of-core run must fit or fail).
    note
        Free text copied into the row.
    """

    stage: str
    sensors: int
    days: int
    run: Callable[["Context"], Any]
    setup: Callable[["Context"], Any] | None = None
    pandas: Callable[["Context"], Any] | None = None
    floor: str | None = "io"
    scheduler: str | None = None
    pandas_max_sensors: int | None = None
    pandas_variants: tuple[tuple[str, Callable[["Context"], Any]], ...] = ()
    repeats: int | None = None
    quick: bool = False
    warmup: bool = True
    memory_limit_gib: float | None = None
    note: str = ""


def city_size(sensors: int, days: int) -> dict[str, int]:
    """``make_city`` arguments for a city of about ``sensors`` sensors in total."""
    per_system = max(1, round(sensors / 7))
    zones = 12 if sensors <= 300 else 20 if sensors <= 2_000 else 40
    return {"zones": zones, "sensors_per_system": per_system, "days": days}


def store_path(sensors: int, days: int) -> Path:
    return TMP / f"city-{sensors}x{days}d.zarr"


def stale_chunks(path: Path) -> bool:
    """Whether a cached store's sensor chunks or codec differ from the current rules
    (``make_city``'s default chunks, ``write_city``'s codec): such a store is rebuilt, so a
    changed rule is measured."""
    import zarr

    from workbench import registry
    from workbench.io.store import series_codec
    from workbench.synth import _default_sensor_chunk

    for system in registry.SYSTEMS:
        if not (path / system).exists():
            continue
        for _, arr in zarr.open_group(path / system, mode="r").arrays():
            if arr.ndim == 2 and arr.dtype.kind == "f":
                return (arr.chunks[0] != _default_sensor_chunk(arr.shape[0], arr.shape[1])
                        or tuple(arr.compressors) != (series_codec(arr.dtype.itemsize),))
    return False


def prepare_store(sensors: int, days: int) -> Path:
    """The reference city of this size as a Zarr store, built once in its own subprocess
    (rebuilt when its chunks are not the current default rule)."""
    path = store_path(sensors, days)
    if path.exists() and stale_chunks(path):
        print(f"  {path.name}: chunks of an older rule, rebuilding", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "benchmarks._harness", "prepare", str(sensors), str(days)],
                       cwd=ROOT, env=bench_env(), check=True)
    if not path.exists():
        TMP.mkdir(parents=True, exist_ok=True)
        print(f"  building the {sensors}-sensor × {days}-day reference store → {path.relative_to(ROOT)}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "benchmarks._harness", "prepare", str(sensors), str(days)],
            cwd=ROOT, env=bench_env(), check=True,
        )
    return path


def _prepare(sensors: int, days: int) -> None:
    from workbench.io import write_city
    from workbench.synth import make_city

    write_city(make_city(**city_size(sensors, days)), store_path(sensors, days), progress=sys.stderr.isatty())


class Context:
    """What a scenario's callables get: the size, the store, a scratch folder, ``state``."""

    def __init__(self, scenario: Scenario, sensors: int | None = None, days: int | None = None):
        self.scenario = scenario
        self.sensors = sensors if sensors is not None else scenario.sensors
        self.days = days if days is not None else scenario.days
        self.size = city_size(self.sensors, self.days)
        self.state: Any = None
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{scenario.stage}-", dir=_ensure(TMP)))
        self.client: Any = None  # the distributed Client, for scheduler="distributed"

    @property
    def store(self) -> Path:
        """Path of the reference city of this size in Zarr (built if missing)."""
        return prepare_store(self.sensors, self.days)

    def open(self, **kw: Any):
        """``read_city(self.store, **kw)``: lazy, the store's own chunks."""
        from workbench.io import read_city

        return read_city(self.store, **kw)

    def city(self, **kw: Any):
        """The same reference city, lazily from ``make_city`` (no store)."""
        from workbench.synth import make_city

        return make_city(**{**self.size, **kw})

    @property
    def input_bytes(self) -> int:
        return input_bytes(self.store)


def _ensure(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def input_bytes(store: Path) -> int:
    """Bytes of the system nodes' data variables (float64 in memory)."""
    from workbench import registry
    from workbench.io import read_city

    tree = read_city(store)
    return int(sum(v.nbytes for name in tree.children if name in registry.SYSTEMS for v in tree[name].data_vars.values()))


# --- environment ---------------------------------------------------------------------------


def code_version() -> dict[str, Any]:
    """``commit`` (short HEAD) and ``dirty`` (uncommitted changes to the library or the
    benchmarks, which the numbers then include) of the checkout being measured."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--", "workbench", "benchmarks/bench_pipeline.py", "benchmarks/_harness.py"))}



def bench_env() -> dict[str, str]:
    """The environment of every benchmark subprocess: explicit thread counts."""
    env = dict(os.environ)
    cores = str(os.cpu_count() or 1)
    env.update({
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": cores,
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # only here, never in tests or CI
        env.pop(var, None)
    return env


def environment() -> dict[str, Any]:
    """What the numbers were measured on (logged once per run)."""
    import platform

    import dask
    import numpy
    import pandas
    import xarray
    from threadpoolctl import threadpool_info

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "versions": {m.__name__: m.__version__ for m in (numpy, pandas, xarray, dask)},
        "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                         "NUMBA_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "threadpool_info": [{k: v for k, v in p.items() if k not in ("filepath", "prefix")} for p in threadpool_info()],  # no local paths
        "page_cache": "warm (stores are read once before timing; repeated reads come from RAM)",
    }


# --- discovery -----------------------------------------------------------------------------


def discover(*, only: list[str] | None = None, quick: bool = False) -> list[tuple[str, int, Scenario]]:
    """Every ``benchmarks/bench_*.py`` module's scenarios: ``(module, index, scenario)``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    found = []
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        name = f"benchmarks.{path.stem}"
        module = importlib.import_module(name)
        items = getattr(module, "SCENARIOS", None)
        if not isinstance(items, (list, tuple)) or not all(isinstance(sc, Scenario) for sc in items):
            print(f"  skipping {path.name}: it has no SCENARIOS list of benchmarks._harness.Scenario "
                  "(see docs/benchmarks.md); run it on its own", file=sys.stderr)
            continue
        for i, sc in enumerate(items):
            if only and sc.stage not in only:
                continue
            if quick and not sc.quick:
                continue
            found.append((name, i, sc))
    return found


# --- the measuring subprocess --------------------------------------------------------------


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class _ChildSampler:
    """Peak summed RSS of this process's children (distributed workers), sampled."""

    def __init__(self, every: float = 0.1):
        import psutil

        self._proc = psutil.Process()
        self._every = every
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(self._every):
            total = 0
            for child in self._proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except Exception:  # noqa: BLE001 - a child may exit between listing and reading
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _call(fn: Callable[[Context], Any], ctx: Context) -> Any:
    from workbench._options import scheduler_context

    with scheduler_context(ctx.client if ctx.client is not None else (ctx.scenario.scheduler or "threads"), progress=False):
        return fn(ctx)


def _warm_worker(sc: Scenario, mode: str) -> None:
    """The warm-up, run inside a distributed worker with its synchronous scheduler: a task of a
    tiny graph runs on one worker only, and the other would compile during the timed run."""
    import dataclasses
    import shutil

    small = Context(dataclasses.replace(sc, scheduler="synchronous"), *WARMUP)
    try:
        small.state = _call(sc.setup, small) if sc.setup else None
        _call(_mode_fn(sc, mode), small)
    finally:
        shutil.rmtree(small.scratch, ignore_errors=True)


def _mode_fn(sc: Scenario, mode: str) -> Callable[[Context], Any]:
    """The callable a mode measures: ``"workbench"``, ``"pandas"`` or ``"pandas:<variant>"``."""
    if mode == "workbench":
        return sc.run
    if mode == "pandas":
        return sc.pandas
    return dict(sc.pandas_variants)[mode.split(":", 1)[1]]


def _measure(module: str, index: int, mode: str) -> dict[str, Any]:
    """Run one scenario (``mode`` = "workbench", "pandas" or "pandas:<variant>") in this
    process; return a row. A timed call that returns a dict with ``stage_seconds`` has them
    copied into the row (the stages of the fastest call)."""
    t0, c0 = time.perf_counter(), _cpu_s()
    load_start = os.getloadavg()
    sc: Scenario = importlib.import_module(module).SCENARIOS[index]
    fn = _mode_fn(sc, mode)
    import numpy  # noqa: F401 - the imports a stage needs count in the import time
    import xarray  # noqa: F401

    import workbench._options  # noqa: F401

    import_s, import_cpu = time.perf_counter() - t0, _cpu_s() - c0
    if sc.memory_limit_gib:
        limit = int(sc.memory_limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cluster = None
    sampler = None
    if sc.scheduler == "distributed" and mode == "workbench":
        import dask
        from distributed import LocalCluster

        with dask.config.set({"distributed.nanny.pre-spawn-environ": workbench._options.worker_environ()}):
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, memory_limit="8GiB")
    warm_s = warm_cpu = None
    sensors = sc.sensors
    if mode != "workbench":
        sensors = _pandas_sensors(sc)
    try:
        if sc.warmup:
            small = Context(sc, *WARMUP)
            if cluster is not None:
                small.client = workbench._options.get_client(cluster.scheduler_address)
            t, c = time.perf_counter(), _cpu_s()
            small.state = _call(sc.setup, small) if sc.setup else None
            _call(fn, small)
            if cluster is not None:  # each worker process pays its own JIT (numbagg cannot cache) before timing
                small.client.run(_warm_worker, sc, mode)
            warm_s, warm_cpu = time.perf_counter() - t, _cpu_s() - c
        ctx = Context(sc, sensors=sensors)
        if cluster is not None:
            ctx.client = workbench._options.get_client(cluster.scheduler_address)
        if sc.floor or sc.setup:
            ctx.store  # noqa: B018 - build it (in a subprocess) before the baseline
        base_mb = _maxrss_mb()
        sampler = _ChildSampler().__enter__() if cluster is not None else None
        ctx.state = _call(sc.setup, ctx) if sc.setup else None
        times: list[float] = []
        cpus: list[float] = []
        stages: list[Any] = []
        while True:
            t, c = time.perf_counter(), _cpu_s()
            res = _call(fn, ctx)
            times.append(time.perf_counter() - t)
            cpus.append(_cpu_s() - c)
            stages.append(res.get("stage_seconds") if isinstance(res, dict) else None)
            del res  # as before: the output does not outlive its call
            wanted = sc.repeats or (1 if times[0] >= 1.0 else MIN_REPEATS)
            if len(times) >= wanted:
                break
        peak_mb = _maxrss_mb() - base_mb
        workers_mb = None
        if sampler is not None:
            sampler.__exit__(None, None, None)
            workers_mb = sampler.peak_mb
        return {
            "seconds": min(times), "seconds_median": statistics.median(times), "repeats": len(times),
            "peak_rss_mb": round(peak_mb + (workers_mb or 0.0), 1), "workers_peak_rss_mb": workers_mb,
            "import_s": round(import_s, 3), "warmup_s": None if warm_s is None else round(warm_s, 3),
            # CPU seconds of this process (not of distributed workers): robust to a loaded machine
            "cpu_s": round(cpus[times.index(min(times))], 3), "import_cpu_s": round(import_cpu, 3),
            "warmup_cpu_s": None if warm_cpu is None else round(warm_cpu, 3),
            "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
            "stage_seconds": stages[times.index(min(times))],
            "measured_sensors": sensors, "input_mb": round(input_bytes(ctx.store) / 1e6, 1) if (sc.floor or sc.setup) else None,
        }
    finally:
        import shutil

        for c in (locals().get("small"), locals().get("ctx")):
            if c is not None:
                shutil.rmtree(c.scratch, ignore_errors=True)
        if sampler is not None:
            sampler._stop.set()
        if cluster is not None:
            workbench._options._close_clients()
            cluster.close()


def _pandas_sensors(sc: Scenario) -> int:
    """The size pandas runs at for this scenario (``pandas_max_sensors`` caps it)."""
    return min(sc.sensors, sc.pandas_max_sensors) if sc.pandas_max_sensors else sc.sensors


def _floors(sensors: int, days: int) -> dict[str, Any]:
    """I/O floor (stream the Zarr store and sum it: with Zarr, and with ``read_city``'s direct
    chunk reads; the faster counts) and memory floor (np.add.reduce), this process."""
    import dask
    import dask.array as da
    import numpy as np
    import zarr

    from workbench import registry

    store = prepare_store(sensors, days)
    arrays, paths = [], []
    for system in registry.SYSTEMS:
        group = zarr.open_group(store / system, mode="r")
        for name, arr in group.arrays():
            if arr.ndim == 2 and arr.dtype.kind == "f":
                arrays.append(arr)
                paths.append(store / system / name)
    from workbench.io._direct import direct_array

    direct = [direct_array(p, name=f"{p.parent.name}-{p.name}") for p in paths]
    io_times, direct_times = [], []
    for _ in range(FLOOR_REPEATS):
        lazy = [da.from_zarr(a).sum() for a in arrays]
        t = time.perf_counter()
        dask.compute(*lazy, scheduler="threads")
        io_times.append(time.perf_counter() - t)
        if all(d is not None for d in direct):  # the same bytes decoded straight into their arrays (read_city's way)
            t = time.perf_counter()
            dask.compute(*[d.sum() for d in direct], scheduler="threads")
            direct_times.append(time.perf_counter() - t)
    mem_s = 0.0
    nbytes = 0
    for a in arrays:  # one variable in memory at a time: the same bytes, one numpy pass each
        x = np.ascontiguousarray(a[...])
        nbytes += x.nbytes
        best = math.inf
        for _ in range(MIN_REPEATS):
            t = time.perf_counter()
            np.add.reduce(x, axis=None)
            best = min(best, time.perf_counter() - t)
        mem_s += best
        del x
    # the floor is the faster of the two ways to stream the store; both are kept in the row
    return {"io_floor_s": min(io_times + direct_times), "io_floor_zarr_s": min(io_times),
            "io_floor_direct_s": min(direct_times) if direct_times else None, "memory_floor_s": mem_s,
            "floor_threads": {"io": os.cpu_count(), "memory": 1}, "input_mb": round(nbytes / 1e6, 1)}


def _subprocess(args: list[str], *, timeout: float | None = None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", dir=_ensure(TMP), delete=False) as fh:
        out = Path(fh.name)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks._harness", *args, "--out", str(out)],
            cwd=ROOT, env=bench_env(), timeout=timeout, capture_output=True, text=True,
        )
        if proc.returncode != 0 or not out.stat().st_size:
            tail = (proc.stderr or "").strip().splitlines()[-6:]
            return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
        return json.loads(out.read_text())
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    finally:
        out.unlink(missing_ok=True)


# --- the driver ----------------------------------------------------------------------------


def run_scenarios(
    scenarios: list[tuple[str, int, Scenario]], *, log: Callable[[str], None] = print, timeout: float | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every scenario (and its floors and pandas twin); return the rows.

    ``on_row(row)`` is called as each row is ready (``run.py`` saves it at once, so a long
    run that is cut short keeps what it measured)."""
    floors: dict[tuple[int, int], dict] = {}
    pandas_cache: dict[tuple, dict] = {}  # by (callable, size): a scaled row reuses its size's measurement
    rows = []
    for module, index, sc in scenarios:
        label = f"{sc.stage} @ {sc.sensors} sensors × {sc.days} d" + (f" [{sc.scheduler}]" if sc.scheduler else "")
        log(f"• {label}")
        row: dict[str, Any] = {
            "stage": sc.stage, "sensors": sc.sensors, "days": sc.days, "module": module.split(".")[-1],
            "scheduler": sc.scheduler or "threads", "note": sc.note, **code_version(),
        }
        if sc.floor:
            key = (sc.sensors, sc.days)
            if key not in floors:
                floors[key] = _subprocess(["floors", str(sc.sensors), str(sc.days)], timeout=timeout)
            fl = floors[key]
            row.update({k: fl.get(k) for k in ("io_floor_s", "io_floor_zarr_s", "io_floor_direct_s", "memory_floor_s")})
        got = _subprocess(["measure", module, str(index), "workbench"], timeout=timeout)
        if "error" in got:
            log(f"  failed: {got['error']}")
            row.update({"seconds": None, "peak_rss_mb": None, "vs_pandas": None, "vs_floor": None, "error": got["error"]})
            rows.append(row)
            if on_row:
                on_row(row)
            continue
        row.update(got)
        row["vs_pandas"] = None
        for name, fn in ([("pandas", sc.pandas)] if sc.pandas is not None else []) + list(sc.pandas_variants):
            mode = "pandas" if name == "pandas" else f"pandas:{name}"
            pkey = (getattr(fn, "__module__", module), getattr(fn, "__qualname__", mode), getattr(sc.setup, "__qualname__", None),
                    _pandas_sensors(sc), sc.days)  # the setup too: another store or layout is another measurement
            if pkey not in pandas_cache:
                pandas_cache[pkey] = _subprocess(["measure", module, str(index), mode], timeout=timeout)
            p = pandas_cache[pkey]
            vs = "vs_pandas" if name == "pandas" else f"vs_{name}"
            if "error" in p:
                row[f"{name}_error"] = p["error"]
                row[vs] = None
                continue
            scale = sc.sensors / p["measured_sensors"]
            row[f"{name}_seconds"] = p["seconds"] * scale
            row[f"{name}_peak_rss_mb"] = p["peak_rss_mb"]
            row[f"{name}_scaled"] = scale != 1
            row[f"{name}_measured_sensors"] = p["measured_sensors"]
            row[f"{name}_load_avg_start"] = p.get("load_avg_start")
            if p.get("stage_seconds"):
                row[f"{name}_stage_seconds"] = p["stage_seconds"]  # at the measured size, unscaled
            row[vs] = round(row[f"{name}_seconds"] / got["seconds"], 2)
        floor_s = row.get("io_floor_s") if sc.floor == "io" else row.get("memory_floor_s") if sc.floor == "memory" else None
        row["floor"] = sc.floor
        row["vs_floor"] = round(got["seconds"] / floor_s, 2) if floor_s else None
        if row.get("input_mb"):
            row["mem_ratio"] = round(got["peak_rss_mb"] / row["input_mb"], 3)
        first = got.get("warmup_s") if sc.warmup else got["seconds"]  # no warm-up: the timed call was the first
        row["cold_start_s"] = None if first is None else round(got["import_s"] + first, 2)
        first_cpu = got.get("warmup_cpu_s") if sc.warmup else got.get("cpu_s")
        row["cold_start_cpu_s"] = None if first_cpu is None else round(got["import_cpu_s"] + first_cpu, 2)
        log(f"  {got['seconds']:.3f} s (cpu {got.get('cpu_s')}), peak {got['peak_rss_mb']:.0f} MB, vs pandas {row['vs_pandas']}, "
            f"vs floor {row['vs_floor']}, load {got.get('load_avg_start')}")
        rows.append(row)
        if on_row:
            on_row(row)
    threaded = {(r["stage"], r["sensors"], r["days"]): r for r in rows if r.get("scheduler") == "threads" and r.get("seconds")}
    for r in rows:
        twin = threaded.get((r["stage"], r["sensors"], r["days"]))
        if r.get("scheduler") != "threads" and twin and r.get("seconds"):
            r["vs_threaded"] = round(r["seconds"] / twin["seconds"], 2)
            log(f"• {r['stage']} @ {r['sensors']} × {r['days']} d: {r['scheduler']} / threads = {r['vs_threaded']}")
            if on_row:  # saved again, now with the ratio
                on_row(r)
    return rows


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The summary table (the one the README shows)."""
    head = ("| stage | sensors | days | scheduler | seconds | peak RSS MB | input MB | mem ratio | vs pandas | vs floor (kind) "
            "| cold start s | CPU s | load (1 min) |")
    lines = [head, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        vs_pandas = _fmt(r.get("vs_pandas")) + ("×" if r.get("vs_pandas") else "") + (" (scaled)" if r.get("pandas_scaled") else "")
        vs_floor = _fmt(r.get("vs_floor")) + (f" ({r.get('floor')})" if r.get("vs_floor") else "")
        secs = _fmt(r.get("seconds"), 3)
        if r.get("repeats", 1) and r.get("repeats", 1) > 1:
            secs += f" (med {_fmt(r.get('seconds_median'), 3)})"
        if r.get("error"):
            secs = "failed"
        lines.append(
            f"| {r['stage']} | {r['sensors']:,} | {r['days']} | {r.get('scheduler', 'threads')} | {secs} | "
            f"{_fmt(r.get('peak_rss_mb'), 0)} | {_fmt(r.get('input_mb'), 0)} | {_fmt(r.get('mem_ratio'))} | "
            f"{vs_pandas} | {vs_floor} | {_fmt(r.get('cold_start_s'))}"
            + (f" (cpu {_fmt(r.get('cold_start_cpu_s'))})" if r.get("cold_start_cpu_s") is not None else "")
            + (f" | {_fmt(r.get('cpu_s'), 1)} | {r['load_avg_start'][0]:.1f} |" if r.get("load_avg_start") else " | — | — |")
        )
    return "\n".join(lines)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._harness", description="internal: one measurement")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("sensors", type=int)
    p.add_argument("days", type=int)
    f = sub.add_parser("floors")
    f.add_argument("sensors", type=int)
    f.add_argument("days", type=int)
    f.add_argument("--out", required=True)
    m = sub.add_parser("measure")
    m.add_argument("module")
    m.add_argument("index", type=int)
    m.add_argument("mode", help='"workbench", "pandas" or "pandas:<variant>"')
    m.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "prepare":
        _prepare(args.sensors, args.days)
        return 0
    try:
        result = _floors(args.sensors, args.days) if args.cmd == "floors" else _measure(args.module, args.index, args.mode)
    except MemoryError:
        traceback.print_exc()
        print("MemoryError: the run did not fit in its memory limit", file=sys.stderr)
        return 3
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
