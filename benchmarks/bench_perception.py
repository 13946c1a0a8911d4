"""Benchmark: quality flags and anomaly scores of a 1,000-sensor year (issue 3, "Must show").

Scenarios
---------
``quality_flags``
    ``quality_flags(city)`` computed for every system of the reference city of 1,000 sensors
    × 365 days at 15 minutes, opened lazily from Zarr. The pandas twin does the same tests
    per sensor with ``pandas`` (NaN runs, constant runs, centred rolling median spike test,
    out of range; drift as a 24 h rolling median against the zone mean).
``anomaly_scores``
    ``anomaly_scores(city)`` (profile by day type and time of day, robust z, the multi-scale
    scan). The pandas twin: groupby-median profile, MAD, rolling sums at 4 scales.

Both compare with the memory floor (one ``np.add.reduce`` over the same bytes, one thread).
The pandas twins run on one system's worth of sensors and are scaled to the whole city
(``pandas_scaled`` in the rows).
"""

from __future__ import annotations

import numpy as np

from benchmarks._harness import Scenario


def _open(ctx):
    return ctx.open()


def _flags(ctx):
    from workbench.perception import quality_flags

    out = quality_flags(ctx.state)
    return [out[n].to_dataset()[[v for v in out[n].data_vars if v.endswith("_qc")]].compute() for n in out.children if n != "zones"]


def _scores(ctx):
    from workbench.perception import anomaly_scores

    out = anomaly_scores(ctx.state)
    return [out[n].to_dataset()[[v for v in out[n].data_vars if v.endswith("_score")]].compute() for n in out.children if n != "zones"]


def _frames(ctx):
    """Each variable of the city as a pandas frame (time × sensor), loaded untimed."""
    city = ctx.state
    out = []
    for n in city.children:
        if n == "zones":
            continue
        ds = city[n].to_dataset()
        for v in ds.data_vars:
            out.append((ds[v].to_pandas().T, ds["zone"].to_numpy()))
    return out


def _flags_pandas(ctx):
    res = []
    for df, zone in _frames(ctx):
        gap = pd_runs(df.isna()) >= 4
        same = df.eq(df.shift())
        flat = pd_runs(same) >= 8
        y = np.log1p(df.clip(lower=0))
        med = y.rolling(9, center=True, min_periods=5).median()
        r = y - med
        mad = (r - r.median()).abs().median() * 1.4826
        spike = (r / mad).abs() >= 8
        drift = y.rolling(96, center=True, min_periods=24).median()
        zmean = drift.T.groupby(zone).transform("mean").T
        far = (drift - zmean).abs() >= 0.06
        oor = df < 0
        res.append(gap | flat | spike | far | oor)
    return res


def pd_runs(mask):
    """Length of the run of True each cell belongs to (pandas)."""
    import pandas as pd

    out = {}
    for c in mask.columns:
        s = mask[c]
        rid = (s != s.shift()).cumsum()
        out[c] = s.groupby(rid).transform("size").where(s, 0)
    return pd.DataFrame(out)


def _scores_pandas(ctx):
    res = []
    for df, _ in _frames(ctx):
        y = np.log1p(df.clip(lower=0))
        idx = df.index
        key = (idx.dayofweek >= 5) * 96 + idx.hour * 4 + idx.minute // 15
        prof = y.groupby(key).transform("median")
        r = y - prof
        z = r / ((r - r.median()).abs().median() * 1.4826)
        best = None
        for k in (1, 4, 16, 64):
            s = z.rolling(k, min_periods=max(1, k // 2)).sum() / np.sqrt(k)
            s = s.rolling(k, min_periods=1).max()
            best = s if best is None else np.maximum(best, s)
        res.append(best)
    return res


SCENARIOS = [
    Scenario(stage="quality_flags", sensors=1_000, days=365, setup=_open, run=_flags, pandas=_flags_pandas,
             floor="memory", pandas_max_sensors=280, quick=True, note="all 13 variables of 7 systems, from Zarr"),
    Scenario(stage="anomaly_scores", sensors=1_000, days=365, setup=_open, run=_scores, pandas=_scores_pandas,
             floor="memory", pandas_max_sensors=280, quick=True, note="flags + profile + robust z + scan, from Zarr"),
]
