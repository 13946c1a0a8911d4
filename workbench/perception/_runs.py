"""Runs of flagged steps -> event rows (``kind, system, zone, sensor, start, end, severity``).

This is where perception leaves the lazy world: a table of events is small, so the boolean
mask is computed here, chunk by chunk, and only the run boundaries are kept.
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["EVENT_COLUMNS", "runs_to_events", "empty_events"]

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
    rows = []
    for i, a, b in _runs(mk, merge):
        seg = np.where(mk[i, a:b + 1], sv[i, a:b + 1], np.nan)
        row = {"kind": kind, "system": system, "zone": str(zones[i]), "sensor": str(sensors[i]),
               "start": time[a], "end": time[b], "severity": float(np.nanmax(seg)) if np.isfinite(seg).any() else np.nan}
        if scv is not None:
            s = scv[i, a:b + 1]
            row["score"] = float(s[np.nanargmax(np.abs(s))]) if np.isfinite(s).any() else np.nan
        row.update(extra or {})
        rows.append(row)
    extra_cols = tuple((extra or {}).keys()) + (("score",) if scv is not None else ())
    if not rows:
        return empty_events(extra_cols)
    df = pd.DataFrame(rows)
    return df[[*EVENT_COLUMNS, *[c for c in df.columns if c not in EVENT_COLUMNS]]]
