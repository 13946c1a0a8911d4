"""Perception's sensor anomalies as lazy, chunk-wise run tables, for the one-pass pipeline.

:func:`workbench.perception.detect_anomalies` computes each variable in its own pass (one
``dask.compute`` per variable, each re-reading the system's data and re-running its quality
flags), which made it the slowest stage of ``workbench.run``. :func:`lazy_anomalies` builds
the *same* detection — perception's :func:`~workbench.perception.anomaly_scores`, its
threshold and per-variable ``anomaly_min_effect``, its run extraction — as one delayed task
per sensor chunk and variable that returns only that chunk's runs. The pipeline computes
those tasks in the same ``dask.compute`` as the city state and the zone signals, so each Zarr
chunk is read once and no full-size score array is ever held whole.

The runs stay narrow until :func:`gather_anomalies` (20 bytes a run: the sensor's position,
first and last step as ``int32``, severity and score in the scores' ``float32``): a 3-year
city has millions of runs at a corroborated variable's lower bar, of which the gather keeps a
fraction, and only the rows kept get their strings. Inside the task, a weak run that a run of
the same sensor at the variable's own bar already covers is dropped (the corroboration would
drop it: :func:`workbench.perception.anomalies.corroborated_rows`).

The result equals ``detect_anomalies(city)`` row for row (tests check it): time is one
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

_TEXT = ("kind", "system", "zone", "sensor")


class _System:
    """A system's labels, once for all its runs: sensor and zone per position in the
    system's own sensor order, and the time axis."""

    __slots__ = ("name", "sensors", "zones", "time")

    def __init__(self, name: str, sensors: np.ndarray, zones: np.ndarray, time: pd.DatetimeIndex):
        self.name, self.sensors, self.zones, self.time = name, sensors, zones, time


class _Adjacent:
    """The city's zone adjacency (``/zones`` ``neighbours``: zone -> adjacent zones), carried in
    the parts so :func:`gather_anomalies` corroborates from adjacent zones as ``detect_anomalies`` does."""

    __slots__ = ("neighbours",)

    def __init__(self, neighbours: dict[str, list[str]]):
        self.neighbours = neighbours


class _Runs:
    """One block's runs of one variable at one bar (``weak``: the corroborated lower bar).

    ``part`` numbers the (variable, bar) jobs in ``detect_anomalies``' order; ``pos`` is each
    run's sensor position in its system's order, ``first``/``last`` its steps."""

    __slots__ = ("system", "variable", "weak", "part", "pos", "first", "last", "severity", "score")

    def __init__(self, system, variable, weak, part, pos, first, last, severity, score):
        self.system, self.variable, self.weak, self.part = system, variable, weak, part
        self.pos, self.first, self.last, self.severity, self.score = pos, first, last, severity, score

    def __len__(self) -> int:
        return len(self.pos)

    def take(self, keep: np.ndarray) -> "_Runs":
        return _Runs(self.system, self.variable, self.weak, self.part, self.pos[keep], self.first[keep],
                     self.last[keep], self.severity[keep], self.score[keep])


def _bar_runs(hit: np.ndarray, z: np.ndarray, sc: np.ndarray, merge: int) -> tuple[np.ndarray, ...]:
    """Block row, first and last step, severity and score of each run of ``hit`` (perception's
    run bounds and per-run values, :mod:`workbench.perception._runs`, on the blocks as they are)."""
    from workbench.perception._runs import _run_bounds, _run_values

    rows, firsts, lasts = _run_bounds(hit, merge)
    if not rows.size:
        return rows, firsts, lasts, np.empty(0, sc.dtype), np.empty(0, sc.dtype)
    sev, score = _run_values(hit, np.abs(z), sc, True, rows, firsts, lasts)
    # |z| and the scores are float32 (float64 per run only as the table's dtype): lossless
    return rows, firsts, lasts, sev.astype(z.dtype), score.astype(sc.dtype)


def _block_runs(score: np.ndarray, z: np.ndarray, effect: np.ndarray, *, jobs: tuple, min_effect: float, merge: int,
                system: int, variable: str, rank: np.ndarray, weak_th: tuple = ()) -> list[_Runs]:
    """The runs of one block at each bar of ``jobs`` (``(part, bar, weak)``, the own bar first);
    weak runs a run at the own bar overlaps are dropped here."""
    from workbench.perception._nearby import weak_mask

    score, z = np.ascontiguousarray(score), np.ascontiguousarray(z)
    material = np.abs(effect) >= min_effect
    out, own = [], None
    n_t = score.shape[1]
    for part, bar, weak in jobs:
        if weak and weak_th:  # the lower bar's own floor and sign (perception._nearby.weak_mask)
            hit = np.ascontiguousarray(weak_mask(score, effect, dict(weak_th), bar))
        else:
            hit = np.ascontiguousarray((np.abs(score) >= bar) & material)
        rows, firsts, lasts, sev, sc = _bar_runs(hit, z, score, merge)
        del hit
        if weak and own is not None and len(own[0]) and len(rows):
            # on one axis row × steps: own runs are sorted and disjoint; a weak run is covered
            # when the last own run starting before its end reaches its start
            a, b = own
            j = np.searchsorted(a, rows * n_t + lasts, side="right") - 1
            covered = (j >= 0) & (b[np.maximum(j, 0)] >= rows * n_t + firsts)
            keep = ~covered
            rows, firsts, lasts, sev, sc = rows[keep], firsts[keep], lasts[keep], sev[keep], sc[keep]
        if not weak:
            own = (rows * n_t + firsts, rows * n_t + lasts)
        out.append(_Runs(system, variable, weak, part, rank[rows].astype(np.int32), firsts.astype(np.int32),
                         lasts.astype(np.int32), sev, sc))
    return out


def lazy_anomalies(city: xr.DataTree, *, threshold: float | None = None, merge_hours: float = 1.0) -> list[Any]:
    """Delayed per-chunk anomaly runs of every system and variable (see the module notes).

    Returns a list of each system's labels and ``dask.delayed`` objects (computed lists for
    in-memory cities); pass the computed list to :func:`gather_anomalies`.
    """
    from workbench.perception import DEFAULT_THRESHOLD, anomaly_scores
    from workbench.perception.anomalies import corroborated_bar
    from workbench.perception._common import data_variables, step_of, steps, thresholds_for, zone_neighbours

    thr = DEFAULT_THRESHOLD if threshold is None else threshold
    parts: list[Any] = []
    adjacent = zone_neighbours(city)
    if adjacent:
        parts.append(_Adjacent(adjacent))
    times: list[pd.DatetimeIndex] = []
    n_jobs = 0
    for system in city.children:
        d = city[system].to_dataset()
        if not ("sensor" in d.dims and "time" in d.dims):
            continue
        # only the variables detection reads (rainfall has no anomaly_min_effect): the
        # scores of the others would be built and thrown away
        names = [n for n in data_variables(d) if thresholds_for(n).get("anomaly_min_effect") is not None]
        if not names:
            continue
        own_order = d["sensor"].to_numpy()
        position = {str(v): i for i, v in enumerate(own_order)}
        # boundary: the zone labels, one string per sensor
        zone_of = np.asarray(d["zone"].values) if "zone" in d.coords else np.full(len(own_order), "", dtype=object)  # boundary: small sensor coordinate
        # zone order: perception gathers the sensors into zone-complete chunks once and leaves
        # them there (no per-output put-back); the runs' row order is restored in gather_anomalies
        d = anomaly_scores(d, variables=names, zone_order=True)
        merge = steps(merge_hours or None, step_of(d["time"]))
        sysname = str(d.attrs.get("system", system) or system)
        time = pd.DatetimeIndex(d.indexes["time"])
        time = next((t for t in times if t.equals(time)), time)  # one object shared by the tasks (pickled once)
        times.append(time)
        key = len(parts)
        parts.append(_System(sysname, np.array([str(v) for v in own_order], dtype=object),
                             np.array([str(v) for v in zone_of], dtype=object), time))
        rank = np.array([position[str(v)] for v in d["sensor"].to_numpy()], dtype=np.int64)
        for name in names:  # parts numbered as detect_anomalies' jobs: the own bar, then the lower one
            jobs = [(n_jobs, thr, False)]
            bar = corroborated_bar(thresholds_for(name), thr)
            if bar is not None:
                jobs.append((n_jobs + 1, bar, True))
            n_jobs += len(jobs)
            th = thresholds_for(name)
            weak_th = tuple((k, th[k]) for k in ("anomaly_min_effect", "anomaly_corroborated_min_effect",
                                                  "anomaly_corroborated_direction")) if bar is not None else ()
            kw = dict(jobs=tuple(jobs), min_effect=th["anomaly_min_effect"], merge=merge, system=key, variable=name,
                      weak_th=weak_th)
            arrays = [d[f"{name}_{s}"].transpose("sensor", "time").data for s in ("score", "z", "effect")]
            if not isinstance(arrays[0], dsa.Array):
                parts.append(_block_runs(*(np.asarray(a) for a in arrays), rank=rank, **kw))
                continue
            arrays = [a.rechunk({1: -1}) for a in arrays]
            chunks = arrays[0].chunks[0]
            arrays = [a.rechunk((chunks, -1)) for a in arrays]
            blocks = [a.to_delayed(optimize_graph=False).ravel() for a in arrays]
            lo = 0
            for i, n in enumerate(chunks):
                parts.append(dask.delayed(_block_runs, pure=True)(blocks[0][i], blocks[1][i], blocks[2][i],
                                                                  rank=rank[lo:lo + n], **kw))
                lo += n
    return parts


def _table(runs: list[_Runs], systems: dict[int, _System]) -> pd.DataFrame:
    """``detect_anomalies``' rows of ``runs``: ordered by job, then sensor in the city's order
    (a sensor's runs in time order), with their strings."""
    runs = sorted((r for r in runs if len(r)), key=lambda r: r.part)  # stable: a job's blocks in order
    n = [len(r) for r in runs]
    part = np.repeat([r.part for r in runs], n)
    pos = np.concatenate([r.pos for r in runs])
    order = np.lexsort((pos, part))  # stable: a sensor's runs stay in time order
    which = np.repeat(np.arange(len(runs)), n)[order]
    pos = pos[order]
    first, last = np.concatenate([r.first for r in runs])[order], np.concatenate([r.last for r in runs])[order]
    cols = {c: np.empty(len(order), dtype=object) for c in (*_TEXT, "variable")}
    start = np.empty(len(order), dtype=systems[runs[0].system].time.dtype)
    end = np.empty_like(start)
    cols["kind"][:] = "anomaly"
    for k, r in enumerate(runs):
        at = which == k
        s = systems[r.system]
        p = pos[at]
        cols["system"][at], cols["variable"][at] = s.name, r.variable
        cols["zone"][at], cols["sensor"][at] = s.zones[p], s.sensors[p]
        start[at], end[at] = s.time.to_numpy()[first[at]], s.time.to_numpy()[last[at]]
    sev = np.concatenate([r.severity for r in runs]).astype(np.float64)[order]
    score = np.concatenate([r.score for r in runs]).astype(np.float64)[order]
    return pd.DataFrame({**{c: cols[c] for c in _TEXT}, "start": start, "end": end, "severity": sev, "score": score,
                         "variable": cols["variable"]})


def _weak_frame(runs: list[_Runs], systems: dict[int, _System]) -> pd.DataFrame:
    """What :func:`~workbench.perception.anomalies.corroborated_rows` reads of weak runs:
    labels as categoricals (no string per row), start and end."""
    cols: dict[str, list] = {"variable": [], "zone": [], "sensor": [], "start": [], "end": []}
    codes = {k: np.unique(s.zones, return_inverse=True) for k, s in systems.items()}
    for r in runs:
        s = systems[r.system]
        zones, zcode = codes[r.system]
        cols["variable"].append(pd.Categorical.from_codes(np.zeros(len(r), dtype=np.int8), [r.variable]))
        cols["zone"].append(pd.Categorical.from_codes(zcode[r.pos], zones))
        cols["sensor"].append(pd.Categorical.from_codes(r.pos, s.sensors))
        cols["start"].append(s.time.to_numpy()[r.first])
        cols["end"].append(s.time.to_numpy()[r.last])
    out = {c: (pd.api.types.union_categoricals(v, ignore_order=True) if c in ("variable", "zone", "sensor")
               else np.concatenate(v)) for c, v in cols.items()}
    return pd.DataFrame(out)


def gather_anomalies(parts: list[Any], *, merge_hours: float = 1.0) -> pd.DataFrame:
    """One table from the computed parts of :func:`lazy_anomalies` (``detect_anomalies``'s columns).

    Runs at a corroborated variable's lower bar are kept only where another system's
    detection corroborates them (:func:`workbench.perception.anomalies.corroborate`, with the
    tolerance ``merge_hours`` as in ``detect_anomalies``), checked one variable at a time
    against the detected table; only the kept runs get strings."""
    from workbench.perception._confirm import confirm
    from workbench.perception._runs import empty_events
    from workbench.perception.anomalies import corroborated_rows

    systems = {i: p for i, p in enumerate(parts) if isinstance(p, _System)}
    neighbours = next((p.neighbours for p in parts if isinstance(p, _Adjacent)), None)
    runs = [r for p in parts if isinstance(p, list) for r in p]
    strong = [r for r in runs if not r.weak and len(r)]
    out = _table(strong, systems) if strong else empty_events(("variable", "score"))
    tol = pd.Timedelta(hours=merge_hours or 0)
    kept = []
    for job in sorted({r.part for r in runs if r.weak}):
        weak = [r for r in runs if r.weak and r.part == job and len(r)]
        if not weak:
            continue
        keep = corroborated_rows(out, _weak_frame(weak, systems), tolerance=tol, neighbours=neighbours)
        lo = 0
        for r in weak:
            k = keep[lo:lo + len(r)]
            lo += len(r)
            if k.any():
                kept.append(r.take(k))
    if kept:
        out = pd.concat([out, _table(kept, systems)], ignore_index=True)
    return confirm(out, tolerance=tol)  # as detect_anomalies: last, after corroboration
