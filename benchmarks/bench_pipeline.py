"""Benchmark: the whole ``workbench run`` pipeline at scale (issue 7), from Zarr.

Scenarios
---------
``pipeline``
    ``workbench.run(store)`` — city state, index, incidents (with perception's anomalies),
    alerts — on the reference city of 1,000 and 10,000 sensors × 1 year read from Zarr, the
    local threaded scheduler. Floor: the I/O floor (stream the same store once and sum it).
    The pandas twin is the plain-pandas chain of ``PERFORMANCE.md`` over the same store
    (per variable: time-of-day climatology, 1-day rolling z-score, zone mean, hourly
    resample); at 10,000 sensors it is run at 1,000 and scaled by the sensor count
    (``pandas_scaled``), to keep the shared machine's memory free.
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
    """The plain pandas pipeline of PERFORMANCE.md, one variable at a time, over the store."""
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


def _tiny_run(ctx):
    import workbench
    from workbench.synth import make_city

    return workbench.run(make_city(zones=4, sensors_per_system=10, days=7), progress=False)


SCENARIOS = [  # cheapest first: a run cut short still has the small sizes
    Scenario(stage="cold_start", sensors=280, days=7, run=_tiny_run, floor=None, warmup=False, repeats=1, quick=True,
             note="fresh process: imports + first workbench.run (JIT) on a 4-zone, 70-sensor week"),
    Scenario(stage="pipeline", sensors=1_000, days=30, run=_run, pandas=_pandas_chain, floor="io", quick=True,
             note="quick size"),
    Scenario(stage="pipeline", sensors=1_000, days=365, run=_run, pandas=_pandas_chain, floor="io",
             memory_limit_gib=16),
    Scenario(stage="pipeline", sensors=1_000, days=365, run=_run, floor="io", scheduler="distributed",
             note="2 local worker processes × 1 thread"),
    Scenario(stage="pipeline_3y", sensors=1_000, days=3 * 365, run=_run, floor="io", memory_limit_gib=8,
             note="3 years (address space capped at 8 GiB; compare the peak RSS with the 4 GiB target)"),
    Scenario(stage="pipeline", sensors=10_000, days=365, run=_run, pandas=_pandas_chain, pandas_max_sensors=1_000,
             floor="io", memory_limit_gib=16, note="input larger than 4 GiB: out of core when the peak stays below it"),
]
