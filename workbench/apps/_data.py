"""Display reductions for the apps: small, pure xarray/pandas helpers (no Panel here).

These turn a city (a :class:`xarray.DataTree`) into the frames the plots draw: zone
polygons, sensor points, per-zone series, a sensor × time matrix. They never compute a
stage of the loop (flags, anomalies, profiles, indices live in perception / analysis /
integration); they only select, slice and reduce what is drawn.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry

__all__ = [
    "ALL",
    "zone_polygons",
    "zone_table",
    "sensor_table",
    "data_variables",
    "zone_frame",
    "sensor_frame",
    "sensor_matrix",
    "label_of",
    "time_bounds",
    "minmax",
    "block_mean",
]

#: the zone selector's value meaning "every zone"
ALL = "all"


def _strings(values) -> np.ndarray:
    """Labels as an object array of ``str`` (numpy's StringDType will not cast to ``str``)."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=object)


def zone_polygons(city: xr.DataTree) -> list[dict[str, Any]]:
    """The district polygons of ``/zones`` (attrs["geojson"]) as HoloViews path dicts.

    Each dict has ``x`` (lon), ``y`` (lat) arrays and ``zone``, ``zone_name`` labels; a
    MultiPolygon gives one dict per part.
    """
    fc = json.loads(city["/zones"].attrs["geojson"])
    out = []
    for feat in fc["features"]:
        geom, props = feat["geometry"], feat.get("properties", {})
        parts = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for rings in parts:
            ring = np.asarray(rings[0], dtype=float)
            out.append({"x": ring[:, 0], "y": ring[:, 1], "zone": str(props.get("zone", "")),
                        "zone_name": str(props.get("zone_name", props.get("zone", "")))})
    return out


def zone_table(city: xr.DataTree) -> pd.DataFrame:
    """One row per zone: ``zone, zone_name, lat, lon, population, area_km2``."""
    ds = city["/zones"].to_dataset()
    cols = [c for c in ("zone_name", "lat", "lon", "population", "area_km2") if c in ds.variables]
    # boundary: a dozen rows of zone metadata, drawn as labels
    df = ds[cols].to_dataframe().reset_index()
    df["zone"] = df["zone"].astype(str)
    if "zone_name" in df:
        df["zone_name"] = df["zone_name"].astype(str)
    return df


def sensor_table(city: xr.DataTree, system: str) -> pd.DataFrame:
    """One row per sensor of ``system``: ``sensor, zone, lat, lon``."""
    ds = city[f"/{system}"].to_dataset()
    # boundary: sensor coordinates, one small row per sensor, drawn as points
    df = pd.DataFrame({
        "sensor": _strings(ds["sensor"].values),
        "zone": _strings(ds["zone"].values),
        "lat": np.asarray(ds["lat"].values, dtype=float),
        "lon": np.asarray(ds["lon"].values, dtype=float),
    })
    return df


def data_variables(city: xr.DataTree, system: str) -> list[str]:
    """Measured variables of a system node (quality flags and scores left out)."""
    ds = city[f"/{system}"].to_dataset()
    found = [str(v) for v in ds.data_vars if not str(v).endswith(("_qc", "_score", "_anomaly"))
             and ds[v].dims == ("sensor", "time")]
    order = {v: i for i, v in enumerate(registry.variables_of(system))} if system in registry.SYSTEMS else {}
    return sorted(found, key=lambda v: order.get(v, len(order)))


def label_of(var: str, da: xr.DataArray | None = None) -> str:
    """``"Long name (units)"`` from the registry (or the array's attrs)."""
    try:
        meta = registry.variable(var)
        name, units = meta["long_name"], meta["units"]
    except KeyError:  # not registered (an uploaded feed's extra field): use attrs
        attrs = da.attrs if da is not None else {}
        name, units = attrs.get("long_name", var), attrs.get("units", "")
    name = name[:1].upper() + name[1:]
    return f"{name} ({units})" if units else name


def _aggregation(var: str) -> str:
    try:
        return registry.variable(var)["aggregation"]
    except KeyError:  # unregistered variables are averaged
        return "mean"


def time_bounds(city: xr.DataTree) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last time step over every system node."""
    lo, hi = [], []
    for name in registry.SYSTEMS:
        if name in city.children and "time" in city[name].dims:
            t = city[name]["time"].values
            lo.append(pd.Timestamp(t[0]))
            hi.append(pd.Timestamp(t[-1]))
    return min(lo), max(hi)


def _window(da: xr.DataArray, window) -> xr.DataArray:
    if window is None:
        return da
    start, end = window
    return da.sel(time=slice(pd.Timestamp(start), pd.Timestamp(end)))


def zone_frame(city: xr.DataTree, system: str, var: str, *, window=None) -> pd.DataFrame:
    """Per-zone series of ``var`` (time × zone), combined as the registry says (sum/mean).

    Readings flagged in ``<var>_qc`` (when present) are left out before combining.
    """
    ds = city[f"/{system}"].to_dataset()
    da = _window(ds[var], window)
    if f"{var}_qc" in ds:
        da = da.where(_window(ds[f"{var}_qc"], window) == 0)
    zones = _strings(ds["zone"].values)
    values = np.asarray(da.values)  # boundary: the app's in-memory city, a plot's worth
    frame = pd.DataFrame(values.T, index=pd.DatetimeIndex(da["time"].values, name="time"))
    how = _aggregation(var)
    out = frame.T.groupby(zones).agg("sum" if how == "sum" else "mean").T
    if how == "sum":  # a zone with no valid reading is missing, not zero
        counts = frame.notna().T.groupby(zones).sum().T
        out = out.where(counts > 0)
    out.columns.name = "zone"
    return out


def sensor_frame(city: xr.DataTree, system: str, var: str, *, zone: str = ALL, window=None) -> pd.DataFrame:
    """The raw series (time × sensor) of the sensors of ``zone`` (every sensor for ``ALL``)."""
    ds = city[f"/{system}"].to_dataset()
    da = _window(ds[var], window)
    zones = _strings(ds["zone"].values)
    keep = np.ones(len(zones), bool) if zone == ALL else zones == zone
    values = np.asarray(da.values)[keep]  # boundary: a plot's worth of rows
    sensors = _strings(ds["sensor"].values)[keep]
    return pd.DataFrame(values.T, index=pd.DatetimeIndex(da["time"].values, name="time"), columns=sensors)


def sensor_matrix(city: xr.DataTree, system: str, var: str, *, window=None) -> xr.DataArray:
    """``var`` as a (sensor-row, time) matrix, sensors sorted by zone, rows numbered 0..n-1.

    The ``row`` coordinate is numeric (HoloViews images need a regular grid); ``sensor``
    and ``zone`` ride along as labels.
    """
    ds = city[f"/{system}"].to_dataset()
    da = _window(ds[var], window)
    zones = _strings(ds["zone"].values)
    order = np.argsort(zones, kind="stable")
    values = np.asarray(da.values)[order]  # boundary: drawn as a raster
    return xr.DataArray(
        values, dims=("row", "time"),
        coords={"row": np.arange(len(order)), "time": da["time"].values,
                "sensor": ("row", _strings(ds["sensor"].values)[order]),
                "zone": ("row", zones[order])},
        name=var, attrs=dict(ds[var].attrs),
    )


def minmax(frame: pd.DataFrame, n_bins: int = 600) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Min-max downsampling: per column, the lowest and highest reading of each of ``n_bins``
    equal runs of rows, in time order (so spikes and dropouts survive).

    Returns ``{column: (times, values)}`` with at most ``2 * n_bins`` points per column; a
    frame short enough is returned whole. Missing values stay missing (a bin with none
    keeps one NaN, so gaps stay visible).
    """
    t = frame.index.to_numpy()
    v = frame.to_numpy(dtype=float)
    n, m = v.shape
    if n <= 2 * n_bins or m == 0:
        return {str(c): (t, v[:, j]) for j, c in enumerate(frame.columns)}
    size = -(-n // n_bins)
    nb = -(-n // size)
    pad = nb * size - n
    vp = np.concatenate([v, np.full((pad, m), np.nan)]) if pad else v
    blocks = vp.reshape(nb, size, m)
    lo = np.argmin(np.where(np.isnan(blocks), np.inf, blocks), axis=1)
    hi = np.argmax(np.where(np.isnan(blocks), -np.inf, blocks), axis=1)
    base = (np.arange(nb) * size)[:, None]
    first, second = np.minimum(lo, hi) + base, np.maximum(lo, hi) + base  # (nb, m) row numbers
    rows = np.stack([first, second], axis=1).reshape(2 * nb, m)
    rows = np.minimum(rows, n - 1)
    out = {}
    for j, c in enumerate(frame.columns):
        r = rows[:, j]
        out[str(c)] = (t[r], v[r, j])
    return out


def block_mean(values: np.ndarray, n: int, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``values`` over equal runs along ``axis`` so at most ``n`` remain (NaNs ignored).

    Returns ``(means, starts)``: the binned array and the index where each run starts.
    """
    v = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    m = v.shape[-1]
    size = max(1, -(-m // n))
    nb = -(-m // size)
    pad = nb * size - m
    if pad:
        v = np.concatenate([v, np.full(v.shape[:-1] + (pad,), np.nan)], axis=-1)
    blocks = v.reshape(v.shape[:-1] + (nb, size))
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(blocks).sum(-1)
        means = np.where(counts > 0, np.nansum(blocks, -1) / np.maximum(counts, 1), np.nan)
    return np.moveaxis(means, -1, axis), np.arange(nb) * size
