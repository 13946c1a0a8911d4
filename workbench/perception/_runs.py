"""Runs of flagged steps -> event rows (``kind, system, zone, sensor, start, end, severity``).

This is where perception leaves the lazy world: a table of events is small, so the boolean
mask is computed here, chunk by chunk, and only the run boundaries are kept.
"""

from __future__ import annotations

import dask
import numba
import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["EVENT_COLUMNS", "runs_to_events", "runs_table", "empty_events"]

EVENT_COLUMNS = ["kind", "system", "zone", "sensor", "start", "end", "severity"]


def empty_events(extra: tuple[str, ...] = ()) -> pd.DataFrame:
    cols = {c: pd.Series(dtype="str") for c in ("kind", "system", "zone", "sensor")}
    cols.update(start=pd.Series(dtype="datetime64[ns]"), end=pd.Series(dtype="datetime64[ns]"),
                severity=pd.Series(dtype="float64"))
    for c in extra:
        cols[c] = pd.Series(dtype="float64" if c == "score" else "str")
    return pd.DataFrame(cols)


def _runs(mask: np.ndarray, merge: int) -> list[tuple[int, int, int]]:
    """(row, first, last) of True runs along axis 1; runs closer than ``merge`` steps are joined."""
    out = []
    for i in np.flatnonzero(mask.any(axis=1)):
        idx = np.flatnonzero(mask[i])
        breaks = np.flatnonzero(np.diff(idx) > merge + 1)
        starts = np.r_[idx[0], idx[breaks + 1]]
        ends = np.r_[idx[breaks], idx[-1]]
        out.extend((int(i), int(a), int(b)) for a, b in zip(starts, ends))
    return out


def _run_bounds(mask: np.ndarray, merge: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, first, last) arrays of the True runs of :func:`_runs`, in the same order."""
    n_t = mask.shape[1]
    flat = np.flatnonzero(mask)
    if not flat.size:
        e = np.empty(0, dtype=np.int64)
        return e, e, e
    row, t = np.divmod(flat, n_t)
    brk = np.flatnonzero((np.diff(t) > merge + 1) | (np.diff(row) != 0))
    starts = np.r_[0, brk + 1]
    ends = np.r_[brk, flat.size - 1]
    return row[starts], t[starts], t[ends]


@numba.njit(cache=True, nogil=True)
def _run_values(mk, sv, sc, has_sc, rows, firsts, lasts):  # pragma: no cover - compiled
    # per run: the largest finite-bearing |severity| over its True cells (NaN if none finite)
    # and the score of largest magnitude over the whole span (first such; NaN if none finite)
    n = rows.shape[0]
    sev = np.full(n, np.nan)
    score = np.full(n, np.nan)
    for r in range(n):
        i = rows[r]
        best = np.nan
        fin = False
        for t in range(firsts[r], lasts[r] + 1):
            if mk[i, t]:
                v = sv[i, t]
                if not np.isnan(v):
                    if np.isnan(best) or v > best:
                        best = v
                    if np.isfinite(v):
                        fin = True
        if fin:
            sev[r] = best
        if has_sc:
            k = -1
            bestv = 0.0
            fin = False
            for t in range(firsts[r], lasts[r] + 1):
                a = abs(sc[i, t])
                if not np.isnan(a):
                    if k < 0 or a > bestv:
                        k = t
                        bestv = a
                    if np.isfinite(a):
                        fin = True
            if fin:
                score[r] = sc[i, k]
    return sev, score


def runs_table(mk: np.ndarray, sv: np.ndarray, scv: np.ndarray | None, *, sensors: np.ndarray, zones: np.ndarray,
               time: pd.DatetimeIndex, kind: str, system: str, merge: int = 0,
               extra: dict[str, object] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`runs_to_events` on in-memory ``(sensor, time)`` arrays (``sv`` already ``|severity|``),
    and the block row of each event: the run bounds with NumPy, severity and score per run in
    one numba pass, the table built column-wise (no Python loop per run)."""
    mk = np.ascontiguousarray(mk, dtype=bool)
    rows, firsts, lasts = _run_bounds(mk, merge)
    extra_cols = tuple((extra or {}).keys()) + (("score",) if scv is not None else ())
    if not rows.size:
        return empty_events(extra_cols), rows
    sev, score = _run_values(mk, np.ascontiguousarray(sv, dtype=np.float64),
                             np.ascontiguousarray(scv if scv is not None else np.empty((0, 0)), dtype=np.float64),
                             scv is not None, rows, firsts, lasts)
    n = rows.size
    cols: dict[str, object] = {
        "kind": [kind] * n, "system": [system] * n,
        "zone": [str(v) for v in np.asarray(zones)[rows]], "sensor": [str(v) for v in np.asarray(sensors)[rows]],
        "start": time[firsts], "end": time[lasts], "severity": sev,
    }
    if scv is not None:
        cols["score"] = score
    for k, v in (extra or {}).items():
        cols[k] = [v] * n
    df = pd.DataFrame(cols)
    return df[[*EVENT_COLUMNS, *[c for c in df.columns if c not in EVENT_COLUMNS]]], rows


def runs_to_events(mask: xr.DataArray, severity: xr.DataArray, *, kind: str, system: str, merge: int = 0,
                   extra: dict[str, object] | None = None, signed_score: xr.DataArray | None = None) -> pd.DataFrame:
    """One row per run of True in ``mask`` (``sensor × time``); severity = max |severity| in the run.

    ``signed_score`` (optional) adds a ``score`` column: the value of largest magnitude in the run.
    """
    m, sev, sc = mask, severity, signed_score
    arrays = [m.transpose("sensor", "time").data, sev.transpose("sensor", "time").data]
    if sc is not None:
        arrays.append(sc.transpose("sensor", "time").data)
    arrays = dask.compute(*arrays)  # boundary: a table of runs is the output of detection
    mk, sv = np.asarray(arrays[0], dtype=bool), np.abs(np.asarray(arrays[1], dtype=np.float64))
    scv = np.asarray(arrays[2], dtype=np.float64) if sc is not None else None
    time = pd.DatetimeIndex(mask["time"].to_numpy())
    sensors = mask["sensor"].to_numpy()
    zones = mask["zone"].to_numpy() if "zone" in mask.coords else np.full(len(sensors), "", dtype=object)
    return runs_table(mk, sv, scv, sensors=sensors, zones=zones, time=time, kind=kind, system=system, merge=merge,
                      extra=extra)[0]
