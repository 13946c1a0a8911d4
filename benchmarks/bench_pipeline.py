"""Benchmark: the whole ``workbench run`` pipeline at scale (issue 7), from Zarr.

Scenarios
---------
``pipeline``
    ``workbench.run(store)`` — city state, index, incidents (with perception's anomalies),
    alerts — on the reference city of 1,000 and 10,000 sensors × 1 year read from Zarr, the
    local threaded scheduler. Floor: the I/O floor (stream the same store once and sum it).
    ``vs_pandas``: the like-for-like pandas twin (:func:`_pipeline_pandas`: per variable,
    read → flags and anomaly scores (bench_perception's twins) → anomaly run table → zone
    residual signals → city state (bench_analysis' roll-up twin, hourly means) → the six
    KPIs; its state and signals equal the workbench's, ``tests/test_bench_twins.py``), with
    the seconds of each stage in ``pandas_stage_seconds``. ``vs_light_chain``: the 4-step
    chain of ``PERFORMANCE.md`` (not the same work). At 10,000 sensors both run at 1,000 in
    the same run and are scaled by the sensor count (``pandas_scaled``).
``pipeline`` [distributed]
    The same at 1,000 sensors × 1 year on a ``LocalCluster`` of 2 worker processes × 1
    thread (started untimed); the workers' memory is sampled into the peak. The summary
    gives the distributed / threaded ratio.
``pipeline_3y``
    Out of core: a 3-year city, peak RSS to compare with the 4 GiB target (the process
    runs under an address-space limit, so it completes within it or fails).
``cold_start``
    A fresh process: imports plus the first ``workbench.run`` on a tiny city (numba JIT,
    first-call costs); no warm-up.
"""

from __future__ import annotations

from benchmarks._harness import Scenario


def _run(ctx):
    import workbench

    return workbench.run(ctx.store, progress=False)


def _pandas_chain(ctx):
    """The light 4-step pandas chain of PERFORMANCE.md (not the same work: kept as a labelled
    second column, ``light_chain`` rows)."""
    import numpy as np
    import pandas as pd
    import zarr

    from workbench import registry
    from workbench.io import read_city

    tree = read_city(ctx.store)
    out = []
    for system in registry.SYSTEMS:
        node = tree[system]
        zones = np.asarray(node["zone"].values)
        time = pd.DatetimeIndex(node["time"].values)
        group = zarr.open_group(ctx.store / system, mode="r")
        for var in node.data_vars:
            df = pd.DataFrame(np.asarray(group[var][...]).T, index=time)  # time × sensor
            clim = df.groupby(df.index.time).transform("mean")
            anom = df - clim
            roll = anom.rolling(96, min_periods=48)
            z = (anom - roll.mean()) / roll.std()
            zone_mean = z.T.groupby(zones).mean().T
            out.append(zone_mean.resample("1h").mean())
    return out


# --- the like-for-like pandas twin of workbench.run ----------------------------------------
#
# Stage by stage, per variable, on one (time × sensor) frame read from the same store:
# flags and anomaly scores are bench_perception's twins, the zone roll-up is bench_analysis'
# (imported, not copied); the runs table, the zone residual signals and the KPIs are here.
# Index, incidents and alerts (in memory, zones × hours) are not in the twin.

#: the twin's stages, in the order they run for each variable
PANDAS_STAGES = ("read", "flags_scores", "anomaly_runs", "zone_signals", "city_state", "kpis")


def pandas_runs(hit, z, score, *, merge):
    """The anomaly table of one frame: one row per run of ``hit`` (time × sensor, bool) per
    sensor, runs closer than ``merge`` steps joined; ``severity`` = max |z| and ``score`` = the
    signed score of largest magnitude over the run's hit steps (vectorised: one groupby)."""
    import numpy as np
    import pandas as pd

    m = hit.to_numpy(dtype=bool).T  # sensor × time
    sensor, step = np.nonzero(m)  # sensor-major: each sensor's steps in time order
    if not len(step):
        return pd.DataFrame(columns=["sensor", "start", "end", "severity", "score"])
    new = np.ones(len(step), dtype=bool)
    new[1:] = (sensor[1:] != sensor[:-1]) | (np.diff(step) > merge + 1)
    long = pd.DataFrame({"run": np.cumsum(new), "sensor": sensor, "step": step,
                         "sev": np.abs(z.to_numpy().T[sensor, step]), "score": score.to_numpy().T[sensor, step]})
    long["mag"] = long["score"].abs()
    g = long.groupby("run")
    out = g.agg(sensor=("sensor", "first"), first=("step", "min"), last=("step", "max"), severity=("sev", "max"))
    out["score"] = long.loc[g["mag"].idxmax().to_numpy(), "score"].to_numpy()
    time = hit.index
    return pd.DataFrame({"sensor": hit.columns[out["sensor"].to_numpy()], "start": time[out["first"].to_numpy()],
                         "end": time[out["last"].to_numpy()], "severity": out["severity"].to_numpy(),
                         "score": out["score"].to_numpy()})


def pandas_lindley(arrivals, capacity):
    """Queue after each step (``b_t = max(0, b_{t-1} + a_t - c)``, ``b_0 = 0``, NaN steps add
    nothing) in closed form: ``S_t - min(0, min_{s<=t} S_s)`` with ``S = cumsum(a - c)``."""
    import numpy as np

    s = (arrivals - capacity).fillna(0.0).cumsum()
    return s - np.minimum(s.cummin(), 0.0)


def _pandas_kpi(formula, params, zonal, frame, zone, hourly_index):
    """One KPI of registry/kpis.yml per zone and day (time × zone), carried onto the hours."""
    import numpy as np

    from benchmarks.bench_analysis import _keys

    day = lambda x: x.resample("1D")  # noqa: E731
    if formula == "peak_to_average":
        val = day(zonal).max() / day(zonal).mean()
    elif formula == "window_ratio":
        h = zonal.index.hour
        inside = (h >= params.get("start_hour", 2)) & (h < params.get("end_hour", 5))
        val = day(zonal[np.asarray(inside)]).mean() / day(zonal).mean()
    elif formula == "congestion":
        val = 1 - day(zonal).mean() / zonal.quantile(params.get("free_flow_quantile", 0.95))
    elif formula == "availability":  # sensor level: each reading against its slot's median
        typical = frame.groupby(_keys(frame.index)).transform("median")
        up = (frame > params.get("fraction_of_typical", 0.1) * typical).astype(float).where(frame.notna())
        val = day(up.T.groupby(zone).mean().T).mean()
    elif formula == "backlog":
        step_h = (zonal.index[1] - zonal.index[0]) / np.timedelta64(1, "h")
        a = zonal * step_h
        val = day(pandas_lindley(a, params.get("capacity_factor", 1.2) * a.mean())).last()
    elif formula == "exceedance_hours":
        hourly = zonal.resample("1h").mean()
        val = day((hourly > params.get("threshold", 25.0)).astype(float).where(hourly.notna())).sum()
    else:
        raise ValueError(f"no pandas twin for the KPI formula {formula!r}")
    return val.reindex(hourly_index, method="ffill")


def twin_variables(store):
    """``(system, dataset, zone labels, variable)`` of every series of the store, in the
    registry's order: what the pandas twins loop over (each reads its own frames)."""
    from workbench import registry
    from workbench.io import read_city

    tree = read_city(store)
    for system in registry.SYSTEMS:
        if system not in tree.children:
            continue
        ds = tree[system].to_dataset()
        zone = ds["zone"].to_numpy()
        for v in ds.data_vars:
            if "time" in ds[v].dims:
                yield system, ds, zone, v


def pandas_state_of(df, zone, system, v, kpis, state, *, lap=lambda stage: None):
    """The city-state twin of one variable: the hourly zone roll-up and completeness, and the
    variable's KPI (``kpis``: ``{(system, variable): (kpi id, spec)}``), added to ``state``."""
    from benchmarks.bench_analysis import rollup_frame
    from workbench import registry

    zonal, comp = rollup_frame(df, zone, registry.variable(v)["aggregation"])
    state[v] = zonal.resample("1h").mean()
    state[f"{v}_completeness"] = comp.resample("1h").mean()
    lap("city_state")
    if (system, v) in kpis:
        kid, k = kpis[system, v]
        state[kid] = _pandas_kpi(k["formula"], k["params"], zonal, df, zone, state[v].index)
        lap("kpis")


def _pipeline_pandas(ctx):
    """``workbench.run``'s heavy stages in plain pandas, one variable at a time (see
    docs/benchmarks.md, "The pandas twin of the pipeline"); returns the outputs and the
    seconds of each stage (``stage_seconds`` in the row)."""
    import time as _time

    import pandas as pd

    from benchmarks.bench_analysis import _frame, _keys
    from benchmarks.bench_perception import _pandas_flags_one, pandas_scores_one
    from workbench.analysis.kpis import load_kpis
    from workbench.perception import DEFAULT_THRESHOLD
    from workbench.perception._common import thresholds_for

    secs = dict.fromkeys(PANDAS_STAGES, 0.0)
    clock = [_time.perf_counter()]

    def lap(stage):
        now = _time.perf_counter()
        secs[stage] += now - clock[0]
        clock[0] = now

    kpis = {(k["system"], k["variable"]): (kid, k) for kid, k in load_kpis().items()}
    tables, signals, state = [], {}, {}
    for system, ds, zone, v in twin_variables(ctx.store):
        clock[0] = _time.perf_counter()
        df = _frame(ds, v)  # time × sensor, read from the store
        lap("read")
        min_effect = thresholds_for(v).get("anomaly_min_effect")
        if min_effect is not None:  # detection: flags once, then the scores
            bad = _pandas_flags_one(df, zone)
            score, effect, z = pandas_scores_one(df, zone, bad)
            lap("flags_scores")
            hit = (score.abs() >= DEFAULT_THRESHOLD) & (effect.abs() >= min_effect)
            merge = int(pd.Timedelta("1h") / (df.index[1] - df.index[0]))
            t = pandas_runs(hit, z, score, merge=merge)
            t["zone"] = pd.Series(zone, index=df.columns).reindex(t["sensor"]).to_numpy()
            t["system"], t["variable"] = system, v
            tables.append(t)
            lap("anomaly_runs")
        if v != "rainfall":  # residuals against the weekday/weekend slot median, zone medians
            normal = df.groupby(_keys(df.index)).transform("median")
            if v == "air_temperature":
                res = df - normal
            else:
                res = df / normal.clip(lower=0.1 * normal.mean(), axis=1) - 1.0
            signals[v] = (res.T.groupby(zone).median().T, df.notna().T.groupby(zone).sum().T)  # median, readings
            lap("zone_signals")
        pandas_state_of(df, zone, system, v, kpis, state, lap=lap)
        del df
    anomalies = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return {"state": state, "signals": signals, "anomalies": anomalies,
            "stage_seconds": {k: round(x, 3) for k, x in secs.items()}}


def _tiny_run(ctx):
    import workbench
    from workbench.synth import make_city

    return workbench.run(make_city(zones=4, sensors_per_system=10, days=7), progress=False)


_LIGHT = (("light_chain", _pandas_chain),)

SCENARIOS = [  # cheapest first: a run cut short still has the small sizes
    Scenario(stage="cold_start", sensors=280, days=7, run=_tiny_run, floor=None, warmup=False, repeats=1, quick=True,
             note="fresh process: imports + first workbench.run (JIT) on a 4-zone, 70-sensor week"),
    Scenario(stage="pipeline", sensors=1_000, days=30, run=_run, pandas=_pipeline_pandas, pandas_variants=_LIGHT,
             floor="io", quick=True, note="quick size"),
    Scenario(stage="pipeline", sensors=1_000, days=365, run=_run, pandas=_pipeline_pandas, pandas_variants=_LIGHT,
             floor="io", memory_limit_gib=16),
    Scenario(stage="pipeline", sensors=1_000, days=365, run=_run, floor="io", scheduler="distributed",
             note="2 local worker processes × 1 thread"),
    Scenario(stage="pipeline_3y", sensors=1_000, days=3 * 365, run=_run, floor="io", memory_limit_gib=8,
             note="3 years (address space capped at 8 GiB; compare the peak RSS with the 4 GiB target)"),
    Scenario(stage="pipeline", sensors=10_000, days=365, run=_run, pandas=_pipeline_pandas, pandas_variants=_LIGHT,
             pandas_max_sensors=1_000, floor="io", memory_limit_gib=16,
             note="input larger than 4 GiB: out of core when the peak stays below it; pandas measured at 1,000 sensors "
                  "in the same run and scaled by the sensor count"),
]


# --- the docs' table -----------------------------------------------------------------------


def table(rows: list[dict] | None = None) -> str:
    """The Markdown table of docs/benchmarks.md from ``results/bench_pipeline.json``."""
    import json

    from benchmarks._harness import RESULTS

    rows = rows if rows is not None else json.loads((RESULTS / "bench_pipeline.json").read_text())
    f = lambda v, d=1: "—" if v is None else f"{v:,.{d}f}"  # noqa: E731
    out = ["| stage | sensors | days | scheduler | seconds | CPU s | peak RSS MB | input MB | peak / input "
           "| vs I/O floor (floor s) | vs pandas, like for like (pandas s) | vs light chain | vs threaded "
           "| load 1/5/15 at start | commit |",
           "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        if r.get("error"):
            out.append(f"| {r['stage']} | {r['sensors']:,} | {r['days']} | {r.get('scheduler')} | failed: {r['error'][:80]} |"
                       + " |" * 10)
            continue
        scaled = " scaled" if r.get("pandas_scaled") else ""
        pandas = f"{r['vs_pandas']:.2f}× ({f(r.get('pandas_seconds'))}{scaled})" if r.get("vs_pandas") else "—"
        light = f"{r['vs_light_chain']:.2f}×" if r.get("vs_light_chain") else "—"
        floor = f"{r['vs_floor']:.1f}× ({f(r.get('io_floor_s'), 2)})" if r.get("vs_floor") else "—"
        load = "/".join(f"{x:.1f}" for x in r["load_avg_start"]) if r.get("load_avg_start") else "—"
        commit = (r.get("commit") or "—") + (" +dirty" if r.get("dirty") else "")
        out.append(f"| {r['stage']} | {r['sensors']:,} | {r['days']} | {r.get('scheduler', 'threads')} | {f(r.get('seconds'))} "
                   f"| {f(r.get('cpu_s'))} | {f(r.get('peak_rss_mb'), 0)} | {f(r.get('input_mb'), 0)} | {f(r.get('mem_ratio'), 2)} "
                   f"| {floor} | {pandas} | {light} | {f(r.get('vs_threaded'), 2)} | {load} | {commit} |")
    return "\n".join(out)


def stage_table(rows: list[dict] | None = None) -> str:
    """Seconds of each stage of the pandas twin (at the size it was measured at)."""
    import json

    from benchmarks._harness import RESULTS

    rows = rows if rows is not None else json.loads((RESULTS / "bench_pipeline.json").read_text())
    seen, out = set(), ["| sensors | days | " + " | ".join(PANDAS_STAGES) + " | total |",
                        "|---:|---:|" + "---:|" * (len(PANDAS_STAGES) + 1)]
    for r in rows:
        st = r.get("pandas_stage_seconds")
        key = (r.get("pandas_measured_sensors"), r["days"])
        if not st or key in seen:
            continue
        seen.add(key)
        out.append(f"| {key[0]:,} | {key[1]} | " + " | ".join(f"{st.get(k, 0):.1f}" for k in PANDAS_STAGES)
                   + f" | {sum(st.values()):.1f} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table())
    print()
    print(stage_table())
