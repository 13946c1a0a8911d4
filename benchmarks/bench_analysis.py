"""Benchmark: profiles, zonal roll-ups and lagged correlation from Zarr (issue 4, "Must show").

Scenarios (10,000 sensors × 365 days at 15 min, and 1,000 sensors for ``--quick``)
---------------------------------------------------------------------------------------
``profile``
    ``profile(node, by="timeofday", daytype=True)`` of every variable of every system (the
    mean weekday and weekend day, per sensor), computed from the Zarr store in one call.
``to_zones``
    ``to_zones(node)`` of every system, in one call: per-zone sums / means and completeness.
``lagged_correlation``
    The five built-in couplings at zone level over ±6 h (49 lags): roll-up, deseasonalize,
    FFT correlation, Bartlett's null — what an analyst runs. One computation per coupling
    (air temperature is read twice, as the pandas twin reads it twice).
``lagged_correlation_sensors``
    Footfall against mobile data traffic sensor by sensor (sensor i of each system), ±6 h,
    deseasonalized, by FFT — the FFT kernel at scale (PERFORMANCE.md pitfall 10).
``climatology``
    The same profile as ``profile`` on every variable already in memory (numpy-backed, one
    thread: no dask), against the one-thread memory floor (``np.add.reduce`` over the same
    bytes, measured by the harness in the same run). Setup loads the arrays (untimed; they
    count in the peak, so its ``mem_ratio`` is ≈ 1 by construction).

Each pandas twin reads the same store (inside the timed run, as the workbench does) and does
the same computation with pandas (groupby mean; groupby sum/count; groupby transform and a
per-lag ``Series.corr`` / ``DataFrame.corrwith`` loop), one variable at a time. pandas runs at
both sizes on the same store as the workbench, except ``lagged_correlation_sensors`` (a per-lag
``corrwith`` over 1,429 columns: minutes), which runs at 1,000 sensors and is scaled by the
sensor count (``pandas_scaled``).
"""

from __future__ import annotations

import numpy as np

from benchmarks._harness import Scenario

COUPLED = [("environment", "air_temperature", "energy", "electric_load"),
           ("environment", "air_temperature", "water", "water_flow"),
           ("environment", "rainfall", "transport", "traffic_speed"),
           ("people", "footfall", "communication", "data_traffic"),
           ("transport", "traffic_flow", "environment", "no2")]
MAX_LAG = 24  # steps of 15 min: ±6 h


def _open(ctx):
    return ctx.open()


#: sensors per chunk of the layout variant: the previous default (synth's ~100 MB rule until
#: session 3: 286 × a year of 15-min float64 = 80 MB, above glibc's largest mmap threshold of
#: 32 MiB, so zarr decodes every chunk into a fresh, page-faulted mapping). The default store now
#: has 85 sensors (24 MB) per chunk; the variant measures what the old layout cost, same run.
LAYOUT_SENSORS = 286


def layout_store(sensors: int, days: int):
    """The reference store of this size rewritten with ``LAYOUT_SENSORS`` sensors per chunk
    (same values, same codec), built once next to it."""
    from benchmarks._harness import store_path
    from workbench.io import read_city, write_city

    src = store_path(sensors, days)
    dst = src.with_name(f"{src.stem}-c{LAYOUT_SENSORS}.zarr")
    if not dst.exists():
        def rechunk(ds):
            ds = ds.assign({n: v.chunk({"sensor": LAYOUT_SENSORS}) for n, v in ds.data_vars.items()
                            if v.dims == ("sensor", "time") and v.dtype.kind == "f"})
            for v in ds.variables.values():
                v.encoding = {k: x for k, x in v.encoding.items() if k in ("dtype", "units", "calendar")}
            return ds

        write_city(read_city(src).map_over_datasets(rechunk), dst, progress=False)
    return dst


def _open_layout(ctx):
    from workbench.io import read_city

    return read_city(layout_store(ctx.sensors, ctx.days))


def raw_store(sensors: int, days: int):
    """The reference store of this size rewritten with its float variables uncompressed (same
    values, same 24 MB chunks; zstd level 0 saves 8 % of a noisy variable's bytes and decodes
    at ~3× the cost of copying them), built once next to it."""
    from benchmarks._harness import store_path
    from workbench.io import read_city, write_city

    src = store_path(sensors, days)
    dst = src.with_name(f"{src.stem}-raw.zarr")
    if not dst.exists():
        def raw(ds):
            for v in ds.variables.values():
                v.encoding = {k: x for k, x in v.encoding.items() if k in ("dtype", "units", "calendar")}
                if v.dims == ("sensor", "time") and v.dtype.kind == "f":
                    v.encoding["compressors"] = None
            return ds

        write_city(read_city(src).map_over_datasets(raw), dst, progress=False)
    return dst


def _open_raw(ctx):
    from workbench.io import read_city

    return read_city(raw_store(ctx.sensors, ctx.days))


def _on_layout(fn, tail=f"c{LAYOUT_SENSORS}"):
    """``fn`` under its own name: the harness measures a pandas twin once per (name, size), and
    the layout variant's twin reads the layout store (its ``setup``), not the default one."""
    def run(ctx):
        return fn(ctx)

    run.__qualname__ = run.__name__ = f"{fn.__name__}_{tail}"
    return run


def _read_sum(ctx):
    import dask

    city = ctx.state
    return dask.compute(*[v.data.sum() for s in _systems(city) for v in city[s].data_vars.values()])


def _systems(city):
    from workbench import registry

    return [s for s in registry.SYSTEMS if s in city.children]


def _profile(ctx):
    import dask

    from workbench.analysis import profile

    return dask.compute(*[profile(ctx.state[s].to_dataset(), by="timeofday", daytype=True) for s in _systems(ctx.state)])


def _to_zones(ctx):
    import dask

    from workbench.analysis import to_zones

    return dask.compute(*[to_zones(ctx.state[s].to_dataset()) for s in _systems(ctx.state)])


def _in_memory(ctx):
    """Every variable as a numpy-backed DataArray (untimed setup of ``climatology``)."""
    city = ctx.open(chunks=None)
    return [city[s][v].load() for s in _systems(city) for v in city[s].data_vars]


def _climatology(ctx):
    from workbench.analysis import profile

    return [profile(x, by="timeofday", daytype=True) for x in ctx.state]


def _climatology_pandas(ctx):
    import pandas as pd

    out = []
    for x in ctx.state:  # the (time × sensor) frame over the same memory, no copy (as to_pandas().T gives)
        df = pd.DataFrame(x.values.T, index=x.indexes["time"], columns=x["sensor"].values, copy=False)
        out.append(df.groupby(_keys(df.index)).mean())
    return out


def _lags(ctx):
    from workbench.analysis import lagged_correlation

    city = ctx.state
    return [lagged_correlation(city[sa][va], city[sb][vb], max_lag=MAX_LAG, deseasonalize=(vb != "no2")).compute()
            for sa, va, sb, vb in COUPLED]


def _lags_sensors(ctx):
    from workbench.analysis import lagged_correlation

    city = ctx.state
    a = city["people"]["footfall"]
    b = city["communication"]["data_traffic"]
    n = min(a.sizes["sensor"], b.sizes["sensor"])
    a = a.isel(sensor=slice(0, n)).assign_coords(sensor=np.arange(n)).reset_coords(drop=True)
    b = b.isel(sensor=slice(0, n)).assign_coords(sensor=np.arange(n)).reset_coords(drop=True)
    return lagged_correlation(a, b, max_lag=MAX_LAG, rollup=False)[["correlation", "best_lag", "null_sd"]].compute()


# --- pandas twins ---------------------------------------------------------------------------


def _frame(ds, v):
    """(time × sensor) frame of one variable, read from the store."""
    return ds[v].to_pandas().T


def _keys(index):
    return [np.asarray(index.day_of_week >= 5), np.asarray(index.hour * 60 + index.minute)]


def _profile_pandas(ctx):
    out = []
    for s in _systems(ctx.state):
        ds = ctx.state[s].to_dataset()
        for v in ds.data_vars:
            df = _frame(ds, v)
            out.append(df.groupby(_keys(df.index)).mean())
    return out


def _rollup_pandas(ds, v, how):
    return rollup_frame(_frame(ds, v), ds["zone"].to_numpy(), how)


def rollup_frame(df, zone, how):
    """The to_zones twin on one frame (time × sensor): ``(zone sums or means, completeness)``."""
    g = df.T.groupby(zone)
    mean = g.mean().T
    n = g.size()
    comp = g.count().T / n
    return (mean * n if how == "sum" else mean), comp


def _to_zones_pandas(ctx):
    from workbench import registry

    out = []
    for s in _systems(ctx.state):
        ds = ctx.state[s].to_dataset()
        for v in ds.data_vars:
            out.append(_rollup_pandas(ds, v, registry.variable(v)["aggregation"]))
    return out


def _anomaly_pandas(df):
    return df - df.groupby(_keys(df.index)).transform("mean")


def _lags_pandas(ctx):
    from workbench import registry

    city = ctx.state
    out = []
    for sa, va, sb, vb in COUPLED:
        A, _ = _rollup_pandas(city[sa].to_dataset(), va, registry.variable(va)["aggregation"])
        B, _ = _rollup_pandas(city[sb].to_dataset(), vb, registry.variable(vb)["aggregation"])
        if vb != "no2":
            A, B = _anomaly_pandas(A), _anomaly_pandas(B)
        res = {z: [A[z].corr(B[z].shift(-lag)) for lag in range(-MAX_LAG, MAX_LAG + 1)] for z in A.columns}
        out.append(res)
    return out


def _lags_sensors_pandas(ctx):
    city = ctx.state
    A = _frame(city["people"].to_dataset(), "footfall")
    B = _frame(city["communication"].to_dataset(), "data_traffic")
    n = min(A.shape[1], B.shape[1])
    A = _anomaly_pandas(A.iloc[:, :n]).set_axis(range(n), axis=1)
    B = _anomaly_pandas(B.iloc[:, :n]).set_axis(range(n), axis=1)
    return [A.corrwith(B.shift(-lag)) for lag in range(-MAX_LAG, MAX_LAG + 1)]


SCENARIOS = [
    Scenario(stage=stage, sensors=n, days=365, setup=_open, run=run, pandas=pd_run, floor="io",
             pandas_max_sensors=pd_max, quick=(n == 1_000), note=note)
    for stage, run, pd_run, pd_max, note in [
        ("profile", _profile, _profile_pandas, None, "timeofday x daytype mean of all 13 variables, from Zarr"),
        ("to_zones", _to_zones, _to_zones_pandas, None, "all 13 variables to zones with completeness, from Zarr"),
        ("lagged_correlation", _lags, _lags_pandas, None, "5 couplings, zone level, +-6 h, roll-up + deseasonalize + FFT, from Zarr"),
        ("lagged_correlation_sensors", _lags_sensors, _lags_sensors_pandas, 1_000,
         "footfall vs data traffic sensor by sensor, +-6 h, FFT, from Zarr"),
    ]
    for n in (1_000, 10_000)
] + [
    Scenario(stage="climatology", sensors=n, days=365, setup=_in_memory, run=_climatology, pandas=_climatology_pandas,
             floor="memory", quick=(n == 1_000),
             note="timeofday x daytype mean of all 13 variables in memory (numpy), one thread, vs the one-thread memory floor")
    for n in (1_000, 10_000)
] + [  # the same stages on the same city stored otherwise: what the layout and the codec cost
    Scenario(stage=f"{stage}_{tail}", sensors=10_000, days=365, setup=setup, run=run,
             pandas=pd_run and _on_layout(pd_run, tail), floor=floor, note=f"{note}; {how}")
    for tail, setup, how in [
        (f"c{LAYOUT_SENSORS}", _open_layout,
         f"store rewritten with {LAYOUT_SENSORS} sensors per chunk (80 MB, the old default), same values and codec"),
        ("raw", _open_raw, "store rewritten without compression (same values, same 24 MB chunks)"),
    ]
    for stage, run, pd_run, floor, note in [
        ("read_sum", _read_sum, None, "io", "stream every variable and sum it (the I/O floor's work), from Zarr"),
        ("profile", _profile, _profile_pandas, None, "timeofday x daytype mean of all 13 variables, from Zarr"),
        ("to_zones", _to_zones, _to_zones_pandas, None, "all 13 variables to zones with completeness, from Zarr"),
        ("lagged_correlation", _lags, _lags_pandas, None, "5 couplings, zone level, +-6 h, from Zarr"),
    ]
]


# --- the summary -------------------------------------------------------------------

_SUMMARY_KEYS = ("stage", "sensors", "days", "seconds", "seconds_median", "cpu_s", "peak_rss_mb", "input_mb", "mem_ratio",
                 "vs_pandas", "pandas_seconds", "pandas_scaled", "vs_floor", "floor", "io_floor_s", "memory_floor_s",
                 "cold_start_s", "load_avg_start", "scheduler", "note")


def summary() -> list[dict]:
    """``results/analysis.json``: the harness's rows trimmed to the issue's columns, plus
    ``vs_pandas_ceiling`` = pandas seconds / I/O floor: the speed-up of a stage that cost no
    more than streaming the store (pandas reads the same store the same way)."""
    import json

    from benchmarks._harness import RESULTS

    rows = []
    found = json.loads((RESULTS / "bench_analysis.json").read_text())
    tail = f"_c{LAYOUT_SENSORS}"
    layout_floor = next((r["seconds"] for r in found if r["stage"] == f"read_sum{tail}" and r.get("seconds")), None)
    for r in found:
        row = {k: r.get(k) for k in _SUMMARY_KEYS if k in r}
        if r["stage"].endswith(tail) and not r["stage"].startswith("read_sum") and layout_floor and r.get("seconds"):
            # the layout variant's own I/O floor: streaming the rewritten store (its read_sum row)
            row.update(io_floor_s=layout_floor, floor=f"io (read_sum{tail})", vs_floor=round(r["seconds"] / layout_floor, 2))
        if r.get("pandas_seconds") and row.get("io_floor_s") and str(row.get("floor", "")).startswith("io"):
            row["vs_pandas_ceiling"] = round(r["pandas_seconds"] / row["io_floor_s"], 2)
        rows.append(row)
    (RESULTS / "analysis.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    for row in summary():
        print(row["stage"], row["sensors"], row.get("seconds"), row.get("vs_pandas"), row.get("vs_pandas_ceiling"),
              row.get("vs_floor"), row.get("mem_ratio"))
