"""Perception's sensor anomalies as lazy, chunk-wise tables, for the one-pass pipeline.

:func:`workbench.perception.detect_anomalies` computes each variable in its own pass (one
``dask.compute`` per variable, each re-reading the system's data and re-running its quality
flags), which made it the slowest stage of ``workbench.run``. :func:`lazy_anomalies` builds
the *same* detection — perception's :func:`~workbench.perception.anomaly_scores`, its
threshold and per-variable ``anomaly_min_effect``, its run extraction — as one delayed task
per sensor chunk and variable that returns only that chunk's small table of runs. The
pipeline computes those tasks in the same ``dask.compute`` as the city state and the zone
signals, so each Zarr chunk is read once and no full-size score array is ever held whole.

The result equals ``detect_anomalies(city)`` row for row (a test checks it): time is one
chunk, so a run never spans two tasks.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["lazy_anomalies", "gather_anomalies"]

_PART, _POS, _WEAK = "_part", "_position", "_weak"
_LABELS = ("kind", "system", "zone", "sensor", "variable")


def _block_runs(mk: np.ndarray, z: np.ndarray, sc: np.ndarray, *, sensors: np.ndarray, zones: np.ndarray,
                time: pd.DatetimeIndex, system: str, merge: int, variable: str, rank: tuple[int, np.ndarray],
                weak: bool = False) -> pd.DataFrame:
    """The runs of one block; ``rank`` = (part number, each sensor's position in the city's
    own order), kept as two hidden columns so :func:`gather_anomalies` can restore
    ``detect_anomalies``' row order after a zone-ordered computation."""
    from workbench.perception._runs import runs_table

    # the numpy blocks as they are (no xarray wrapping, no copies): perception's run table
    df, rows = runs_table(np.asarray(mk, dtype=bool), np.abs(np.asarray(z, dtype=np.float64)),
                          np.asarray(sc, dtype=np.float64), sensors=sensors, zones=zones, time=time, kind="anomaly",
                          system=system, merge=merge, extra={"variable": variable})
    if len(df):
        df[_PART] = rank[0]
        df[_POS] = rank[1][rows]
        df[_WEAK] = weak
        if weak:  # most weak runs are dropped in gather: their labels as codes, not a string per row
            for c in _LABELS:
                df[c] = df[c].astype("category")
    return df


def lazy_anomalies(city: xr.DataTree, *, threshold: float | None = None, merge_hours: float = 1.0) -> list[Any]:
    """Delayed per-chunk anomaly tables of every system and variable (see the module notes).

    Returns a list of ``dask.delayed`` objects (or DataFrames for in-memory cities); pass the
    computed list to :func:`gather_anomalies`.
    """
    from workbench.perception import DEFAULT_THRESHOLD, anomaly_scores
    from workbench.perception.anomalies import corroborated_bar
    from workbench.perception._common import data_variables, step_of, steps, thresholds_for

    thr = DEFAULT_THRESHOLD if threshold is None else threshold
    parts: list[Any] = []
    times: list[pd.DatetimeIndex] = []
    for system in city.children:
        d = city[system].to_dataset()
        if not ("sensor" in d.dims and "time" in d.dims):
            continue
        # only the variables detection reads (rainfall has no anomaly_min_effect): the
        # scores of the others would be built and thrown away
        names = [n for n in data_variables(d) if thresholds_for(n).get("anomaly_min_effect") is not None]
        if not names:
            continue
        position = {str(v): i for i, v in enumerate(d["sensor"].to_numpy())}
        # zone order: perception gathers the sensors into zone-complete chunks once and leaves
        # them there (no per-output put-back); the runs' row order is restored in gather_anomalies
        d = anomaly_scores(d, variables=names, zone_order=True)
        merge = steps(merge_hours or None, step_of(d["time"]))
        sysname = str(d.attrs.get("system", system) or system)
        time = pd.DatetimeIndex(d.indexes["time"])
        time = next((t for t in times if t.equals(time)), time)  # one object shared by the tasks (pickled once)
        times.append(time)
        sensors = d["sensor"].to_numpy()
        rank = np.array([position[str(v)] for v in sensors], dtype=np.int64)
        # boundary: the zone labels, one string per sensor
        zones = np.asarray(d["zone"].values) if "zone" in d.coords else np.full(len(sensors), "", dtype=object)  # boundary: small sensor coordinate
        jobs = []
        for name in names:  # (variable, bar, weak): a corroborated variable's lower bar as extra parts
            jobs.append((name, thr, False))
            bar = corroborated_bar(thresholds_for(name), thr)
            if bar is not None:
                jobs.append((name, bar, True))
        for name, bar, weak in jobs:
            min_effect = thresholds_for(name)["anomaly_min_effect"]
            score = d[f"{name}_score"].transpose("sensor", "time")
            hit = (abs(score) >= bar) & (abs(d[f"{name}_effect"]) >= min_effect)
            arrays = [hit.transpose("sensor", "time").data, d[f"{name}_z"].transpose("sensor", "time").data, score.data]
            kw = dict(time=time, system=sysname, merge=merge, variable=name, weak=weak)
            if not isinstance(arrays[0], dsa.Array):
                parts.append(_block_runs(*(np.asarray(a) for a in arrays), sensors=sensors, zones=zones,
                                         rank=(len(parts), rank), **kw))
                continue
            first = len(parts)
            arrays = [a.rechunk({1: -1}) for a in arrays]
            chunks = arrays[0].chunks[0]
            arrays = [a.rechunk((chunks, -1)) for a in arrays]
            blocks = [a.to_delayed(optimize_graph=False).ravel() for a in arrays]
            lo = 0
            for i, n in enumerate(chunks):
                parts.append(dask.delayed(_block_runs, pure=True)(
                    blocks[0][i], blocks[1][i], blocks[2][i], sensors=sensors[lo:lo + n], zones=zones[lo:lo + n],
                    rank=(first, rank[lo:lo + n]), **kw))
                lo += n
    return parts


def gather_anomalies(parts: list[pd.DataFrame], *, merge_hours: float = 1.0) -> pd.DataFrame:
    """One table from the computed parts of :func:`lazy_anomalies` (``detect_anomalies``'s columns).

    Runs at a corroborated variable's lower bar are kept only where another system's
    detection corroborates them (:func:`workbench.perception.anomalies.corroborate`, with the
    tolerance ``merge_hours`` as in ``detect_anomalies``); the weak parts are checked one at a
    time against the detected table (most of their runs are dropped: no concatenation of them all)."""
    from workbench.perception._confirm import confirm
    from workbench.perception._runs import empty_events
    from workbench.perception.anomalies import corroborated_rows

    def ordered(frames: list[pd.DataFrame]) -> pd.DataFrame:
        # one variable's parts in the city's sensor order (runs of a sensor stay in time order)
        out = pd.concat(frames, ignore_index=True)
        if _PART in out:
            out = out.sort_values([_PART, _POS], kind="stable").drop(columns=[_PART, _POS])
        return out.drop(columns=[_WEAK], errors="ignore").reset_index(drop=True)

    frames = [f for f in parts if len(f)]
    is_weak = [_WEAK in f and bool(f[_WEAK].iloc[0]) for f in frames]
    strong = [f for f, w in zip(frames, is_weak) if not w]
    out = ordered(strong) if strong else empty_events(("variable", "score"))
    tol = pd.Timedelta(hours=merge_hours or 0)
    kept = []
    for f, w in zip(frames, is_weak):
        if w:
            keep = corroborated_rows(out, f.drop(columns=[_PART, _POS, _WEAK], errors="ignore").reset_index(drop=True),
                                     tolerance=tol)
            if keep.any():
                kept.append(f[keep])
    if kept:
        kept = ordered(kept)
        for c in _LABELS:  # the kept weak rows' labels back to strings, as detect_anomalies has them
            if isinstance(kept[c].dtype, pd.CategoricalDtype):
                kept[c] = kept[c].astype(out[c].dtype if len(out) else str)
        out = pd.concat([out, kept], ignore_index=True)
    return confirm(out, tolerance=tol)  # as detect_anomalies: last, after corroboration
