"""Benchmark: the integration stages of ``workbench run`` on their own (issue 7).

Scenarios
---------
``city_state``
    ``city_state(city, freq="1h")`` computed from Zarr: every variable rolled up to zones
    with its completeness, hourly means, the KPIs of ``registry/kpis.yml``. The pandas twin
    is the pipeline twin's read, city-state and KPI stages (``bench_pipeline``), run at
    1,000 sensors (scaled at 10,000). Floor: the I/O floor.
``incidents``
    ``detect_incidents`` (zone detectors, sensor evidence, ``sensor_fault`` incidents), the
    index and ``respond`` (rules to alerts) on the products of the one pass over the city:
    the anomaly table, the zone signals and the state. Those inputs are made once per code
    version by a subprocess, untimed (:func:`inputs`), and loaded in ``setup``. The stage is
    in-memory pandas/numpy already (no dask), so there is no separate pandas twin and no
    floor of the store's bytes: the row reports seconds and memory only.

In ``workbench run`` both happen inside the pipeline (the state in its one dask compute,
incidents and alerts after it); ``bench_pipeline`` times the whole.
"""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys
from pathlib import Path

from benchmarks._harness import ROOT, TMP, Scenario, bench_env, prepare_store


def _open(ctx):
    return ctx.open()


def _state(ctx):
    from workbench.integration import city_state

    return city_state(ctx.state, freq="1h").compute()


def _state_pandas(ctx):
    """Read each variable, roll it up to zones (hourly), with its KPI: the pipeline twin's
    read, city-state and KPI stages."""
    from benchmarks.bench_analysis import _frame
    from benchmarks.bench_pipeline import pandas_state_of, twin_variables
    from workbench.analysis.kpis import load_kpis

    kpis = {(k["system"], k["variable"]): (kid, k) for kid, k in load_kpis().items()}
    state: dict = {}
    for system, ds, zone, v in twin_variables(ctx.store):
        pandas_state_of(_frame(ds, v), zone, system, v, kpis, state)
    return state


def _code_key() -> str:
    """A hash of the library's source and registry: the cached inputs belong to one code version."""
    h = hashlib.sha1()
    for p in sorted((ROOT / "workbench").rglob("*")):
        if p.suffix in (".py", ".yml", ".yaml", ".json") and "__pycache__" not in p.parts:
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def inputs_path(sensors: int, days: int) -> Path:
    return TMP / f"integration-inputs-{sensors}x{days}d-{_code_key()}.pkl"


def build_inputs(sensors: int, days: int) -> Path:
    """The one pass of ``workbench run`` over the city (state, zone signals, anomaly table), pickled."""
    import workbench  # noqa: F401
    from workbench._options import scheduler_context
    from workbench.integration import city_state, zone_signals
    from workbench.integration._anomalies import gather_anomalies, lazy_anomalies
    from workbench.integration.pipeline import compute_by_source
    from workbench.io import read_city

    tree = read_city(prepare_store(sensors, days))
    with scheduler_context("threads", progress=False):
        state, signals, parts = compute_by_source(tree, city_state(tree, freq="1h"), zone_signals(tree), lazy_anomalies(tree))
    out = inputs_path(sensors, days)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps({"state": state, "signals": signals, "anomalies": gather_anomalies(parts)}))
    tmp.replace(out)
    return out


def _inputs(ctx):
    """Untimed: the stage's inputs, built by a subprocess when this code version has none yet
    (its memory is not this process's)."""
    path = inputs_path(ctx.sensors, ctx.days)
    if not path.exists():
        print(f"  building the integration inputs → {path.relative_to(ROOT)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "benchmarks.bench_integration", str(ctx.sensors), str(ctx.days)],
                       cwd=ROOT, env=bench_env(), check=True)
    with path.open("rb") as fh:  # the inputs count in the stage's peak (~100 MB at 1,000 sensors)
        got = pickle.load(fh)
    return ctx.open(), got["state"], got["signals"], got["anomalies"]


def _incidents(ctx):
    from workbench.integration import city_index, detect_incidents, respond

    tree, state, signals, anomalies = ctx.state
    incidents = detect_incidents(tree, anomalies=anomalies, signals=signals)
    index = city_index(state)
    return incidents, respond(state, incidents, index=index)


SCENARIOS = [
    *(Scenario(stage="city_state", sensors=n, days=365, setup=_open, run=_state, pandas=_state_pandas,
               pandas_max_sensors=1_000, floor="io", quick=n == 1_000,
               note="every variable to zones, hourly, with completeness and KPIs, from Zarr"
                    + ("" if n == 1_000 else "; pandas at 1,000 sensors, scaled"))
      for n in (1_000, 10_000)),
    *(Scenario(stage="incidents", sensors=n, days=365, setup=_inputs, run=_incidents, floor=None, quick=n == 1_000,
               note="detect_incidents + city_index + respond on the pass's products (anomaly table, zone signals, "
                    "state; built untimed); in-memory pandas/numpy, no pandas twin")
      for n in (1_000, 10_000)),
]


if __name__ == "__main__":  # python -m benchmarks.bench_integration SENSORS DAYS: build the inputs
    print(build_inputs(int(sys.argv[1]), int(sys.argv[2])))
