"""A short summary of any city store: systems, sensors, time span, completeness."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry

__all__ = ["summarise"]


def _step(time: pd.DatetimeIndex | None) -> str | None:
    """The sampling step, when the time axis is regular (e.g. ``'15min'``)."""
    if time is None or len(time) < 2:
        return None
    steps = np.unique(np.diff(time.asi8[: 10_000]))
    if len(steps) != 1:
        return None
    minutes = pd.Timedelta(int(steps[0]), unit="ns") / pd.Timedelta("1min")
    return f"{minutes:g}min"


def summarise(city: xr.DataTree) -> dict:
    """Systems, sensors, variables, time span and completeness of ``city``.

    Completeness is the fraction of sensor-readings present (not NaN) per variable; computing
    it reads the data once (one boundary: this is a report).
    """
    out: dict = {"title": city.attrs.get("title", ""), "systems": {}}
    lazy = {}
    for name in registry.SYSTEMS:
        if name not in city.children:
            continue
        ds = city[name].to_dataset()
        time = ds.indexes.get("time")
        entry = {
            "sensors": int(ds.sizes.get("sensor", 0)),
            "zones": int(len(np.unique(ds["zone"].to_numpy()))) if "zone" in ds.coords else 0,  # boundary: small coord
            "start": str(time[0]) if time is not None and len(time) else None,
            "end": str(time[-1]) if time is not None and len(time) else None,
            "freq": _step(time),
            "variables": {},
        }
        for var in ds.data_vars:
            if var.endswith("_qc") or "sensor" not in ds[var].dims:
                continue
            entry["variables"][var] = {"units": ds[var].attrs.get("units", ""), "long_name": ds[var].attrs.get("long_name", var)}
            lazy[(name, var)] = ds[var].notnull().mean()
        out["systems"][name] = entry
    (values,) = dask.compute(lazy)  # boundary: the summary is a report
    for (name, var), frac in values.items():
        out["systems"][name]["variables"][var]["completeness"] = round(float(frac), 4)
    if "zones" in city.children:
        out["zones"] = int(city["zones"].sizes.get("zone", 0))
    return out
