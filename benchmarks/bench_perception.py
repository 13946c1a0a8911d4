"""Benchmark: quality flags and anomaly scores of a 1,000- and a 10,000-sensor year (issues 3 and 7).

Scenarios
---------
``quality_flags``
    ``quality_flags(city)`` computed for every system of the reference city of 1,000 (and
    10,000) sensors × 365 days at 15 minutes, opened lazily from Zarr; at 10,000 each
    variable's flags are reduced to flagged readings per sensor as they are made. The pandas twin does the same tests
    with ``pandas`` (NaN runs, constant runs, the log scale, the zone-buddy difference by a
    zone groupby, centred rolling-median spike tests on the buddy difference and the own
    series with Δ² noise, the stands-out check, drift as a 24 h rolling median of the buddy
    difference held for 6 h, out of range).
``anomaly_scores``
    ``anomaly_scores(city)`` (flags, profile by day type and time of day, robust z, the
    multi-scale scan, 1 h effect; at 10,000 sensors reduced to the largest |score| per
    sensor as they are made). The pandas twin: the flags twin as the mask, groupby-median
    profile, MAD, rolling sums at 4 scales each recalibrated by its median/MAD, rolling max,
    1 h rolling median — the same work (the robust rolling-median/MAD variant).

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


def _flag_counts(ctx):
    """10,000 sensors: the flags would not all fit beside the run, so each variable's are
    reduced as they are made to the number of flagged readings per sensor (the same tests)."""
    from workbench.perception import quality_flags

    out = quality_flags(ctx.state)
    return [(out[n].to_dataset()[[v for v in out[n].data_vars if v.endswith("_qc")]] != 0).sum("time").compute()
            for n in out.children if n != "zones"]


def _score_max(ctx):
    """10,000 sensors: each variable's scores reduced as they are made to the largest |score|
    per sensor (the same scores)."""
    from workbench.perception import anomaly_scores

    out = anomaly_scores(ctx.state)
    return [abs(out[n].to_dataset()[[v for v in out[n].data_vars if v.endswith("_score")]]).max("time").compute()
            for n in out.children if n != "zones"]


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


def _pandas_flags_one(df, zone):
    """The workbench's tests in plain pandas, one frame (time × sensor) of one variable."""
    gap = pd_runs(df.isna()) >= 4
    same = df.eq(df.shift())
    flat = pd_runs(same) >= 8
    y = np.log1p(df.clip(lower=0) / (0.05 * df.where(df > 0).median()))
    y = y.where(~(gap | flat))
    y = y - y.median()
    # zone buddies: mean of the zone's other sensors at each step
    tot = y.fillna(0).T.groupby(zone).transform("sum").T
    cnt = y.notna().T.groupby(zone).transform("sum").T
    others = cnt - y.notna()
    d = (y - (tot - y.fillna(0)) / others.where(others > 0)).where(others >= 2, y)

    def local_z(v):
        r = v - v.rolling(9, center=True, min_periods=5).median()
        d2 = v.diff().diff()
        return r / ((d2 - d2.median()).abs().median() * 1.4826 / np.sqrt(6))

    z_zone, z_own = local_z(d), local_z(y)
    mean_abs = z_zone.abs().T.groupby(zone).transform("mean").T
    spike = (z_zone.abs() >= 6) & (z_own.abs() >= 3) & (np.sign(z_zone) == np.sign(z_own)) & (z_zone.abs() > mean_abs)
    drift = d.where(~spike).rolling(96, center=True, min_periods=24).median()
    drift = drift - d.median()
    far = (drift.abs() >= 0.06) & (drift.abs() > drift.abs().T.groupby(zone).transform("mean").T)
    far = far & (pd_runs(far) >= 24)
    oor = df < 0
    return gap | flat | spike | far | oor


def _flags_pandas(ctx):
    return [_pandas_flags_one(df, zone) for df, zone in _frames(ctx)]


def pd_runs(mask):
    """Length of the run of True each cell belongs to (pandas, vectorised over columns: a
    run id from ``mask != mask.shift()``, made unique per column, counted with ``bincount``)."""
    import pandas as pd

    m = mask.to_numpy(dtype=bool)
    n, k = m.shape
    rid = mask.ne(mask.shift()).cumsum().to_numpy() + np.arange(k) * (n + 1)
    size = np.bincount(rid.ravel())
    return pd.DataFrame(np.where(m, size[rid], 0), index=mask.index, columns=mask.columns)


def pandas_scores_one(df, zone, bad=None):
    """The score twin on one frame (time × sensor): ``(score, effect, z)`` frames.

    ``bad`` is the flags twin's mask (computed here when not given)."""
    if bad is None:
        bad = _pandas_flags_one(df, zone)
    y = np.log1p(df.clip(lower=0) / (0.05 * df.where(df > 0).median())).where(~bad)
    idx = df.index
    key = np.minimum(np.maximum(idx.day_of_week - 4, 0), 2) * 96 + idx.hour * 4 + idx.minute // 15
    prof = y.groupby(key).transform("median")
    r = y - prof
    z = r / ((r - r.median()).abs().median() * 1.4826)
    best = None
    for k in (1, 4, 16, 64):
        s = z.rolling(k, min_periods=max(1, k // 2)).sum() / np.sqrt(k)
        s = (s - s.median()) / ((s - s.median()).abs().median() * 1.4826)
        s = s.rolling(k, min_periods=1).max()
        best = s if best is None else np.maximum(best, s)
    effect = r.rolling(4, center=True, min_periods=2).median()
    return best, effect, z


def _scores_pandas(ctx):
    return [pandas_scores_one(df, zone)[:2] for df, zone in _frames(ctx)]


SCENARIOS = [
    Scenario(stage="quality_flags", sensors=1_000, days=365, setup=_open, run=_flags, pandas=_flags_pandas,
             floor="memory", pandas_max_sensors=280, quick=True, note="all 13 variables of 7 systems, from Zarr"),
    Scenario(stage="anomaly_scores", sensors=1_000, days=365, setup=_open, run=_scores, pandas=_scores_pandas,
             floor="memory", pandas_max_sensors=280, quick=True, note="flags + profile + robust z + scan, from Zarr"),
    Scenario(stage="quality_flags", sensors=10_000, days=365, setup=_open, run=_flag_counts, pandas=_flags_pandas,
             floor="memory", pandas_max_sensors=280,
             note="all 13 variables of 7 systems, from Zarr, reduced to flagged readings per sensor; pandas at 280 "
                  "sensors, scaled"),
    Scenario(stage="anomaly_scores", sensors=10_000, days=365, setup=_open, run=_score_max, pandas=_scores_pandas,
             floor="memory", pandas_max_sensors=280,
             note="flags + profile + robust z + scan, from Zarr, reduced to max |score| per sensor; pandas at 280 "
                  "sensors, scaled"),
]
