"""Private helpers shared by the analysis modules: calendar keys, history, flags, dims."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry

#: calendar keys a profile can be taken by, with the label of their dimension
BY = ("hour", "timeofday", "dayofweek", "hourofweek", "month")
DAYTYPES = np.array(["weekday", "weekend"], dtype=object)
_GAP_FILLED = "gap"


def history(attrs: dict[str, Any], call: str) -> dict[str, Any]:
    """Return ``attrs`` with one ``history`` line appended for ``call``."""
    stamp = pd.Timestamp.now("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp} workbench.analysis.{call}"
    old = attrs.get("history")
    return {**attrs, "history": f"{old}\n{line}" if old else line}


def time_index(obj: xr.DataArray | xr.Dataset) -> pd.DatetimeIndex:
    """The time axis as a pandas index (an index coordinate: always in memory)."""
    if "time" not in obj.dims:
        raise ValueError(f"expected a 'time' dimension, got dims {tuple(obj.dims)}.")
    return obj.indexes["time"]


def calendar_key(obj: xr.DataArray | xr.Dataset, by: str) -> tuple[xr.DataArray, np.ndarray]:
    """An integer/float label per time step and the expected groups, for a profile ``by``."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}; got {by!r}.")
    t = time_index(obj)
    if by == "hour":
        v, groups = t.hour.to_numpy(), np.arange(24)
    elif by == "timeofday":
        v = (t.hour.to_numpy() * 60 + t.minute.to_numpy()) / 60.0
        groups = np.unique(v)
    elif by == "dayofweek":
        v, groups = t.day_of_week.to_numpy(), np.arange(7)
    elif by == "hourofweek":
        v, groups = t.day_of_week.to_numpy() * 24 + t.hour.to_numpy(), np.arange(168)
    else:
        v, groups = t.month.to_numpy(), np.arange(1, 13)
    key = xr.DataArray(v, dims="time", coords={"time": obj["time"]}, name=by)
    return key, groups


def weekend(obj: xr.DataArray | xr.Dataset) -> np.ndarray:
    """True on Saturdays and Sundays, per time step (numpy, from the index)."""
    return time_index(obj).day_of_week.to_numpy() >= 5


def daytype_key(obj: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """'weekday' / 'weekend' per time step."""
    v = DAYTYPES[weekend(obj).astype(int)]
    return xr.DataArray(v, dims="time", coords={"time": obj["time"]}, name="daytype")


def data_vars(ds: xr.Dataset) -> list[str]:
    """Measured variables along time (quality flags and completeness excluded)."""
    return [
        str(n) for n, v in ds.data_vars.items()
        if "time" in v.dims and not str(n).endswith(("_qc", "_completeness"))
    ]


def valid_mask(ds: xr.Dataset, name: str) -> xr.DataArray:
    """True where a reading of ``name`` is present and carries no quality flag.

    Honours ``<name>_qc`` (CF ``flag_masks`` / ``flag_meanings``) when present: a reading
    with any flag set is excluded, except the ``gap`` flag on a value that is present
    (a gap filled within ``max_gap``).
    """
    ok = ds[name].notnull()
    qc_name = f"{name}_qc"
    if qc_name in ds:
        qc = ds[qc_name]
        bad = (qc.astype(np.uint8) & np.uint8(bad_bits(qc.attrs))) != 0
        ok = ok & ~bad
    return ok


def bad_bits(qc_attrs: dict) -> int:
    """The bits of a ``<var>_qc`` mask that exclude a reading: all but ``gap`` (filled)."""
    meanings = str(qc_attrs.get("flag_meanings", "")).split()
    masks = np.atleast_1d(qc_attrs.get("flag_masks", [2**i for i in range(len(meanings))]))
    allowed = sum(int(m) for m, k in zip(masks, meanings) if k == _GAP_FILLED)
    return 0xFF ^ allowed


def var_attrs(name: str, da: xr.DataArray) -> dict[str, Any]:
    """The attrs of a variable: its own, else the registry's."""
    attrs = dict(da.attrs)
    try:
        reg = registry.variable(name)
    except KeyError:
        return attrs
    attrs.setdefault("units", reg["units"])
    attrs.setdefault("long_name", reg["long_name"])
    attrs.setdefault("system", reg["system"])
    return attrs


def single_time_chunk(da: xr.DataArray) -> xr.DataArray:
    """Rechunk so the time axis is one chunk (per-series kernels need it); no-op in memory."""
    if da.chunks is not None and len(da.chunksizes.get("time", ())) > 1:
        return da.chunk({"time": -1})
    return da
