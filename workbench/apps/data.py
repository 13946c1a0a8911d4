"""Data the apps draw, cached once per server process with :func:`panel.cache`.

Every session of every served notebook shares these: a city is opened and loaded into
memory once, and the per-(dataset, system, variable) frames are reduced once, so an extra
session costs only its own plots (PERFORMANCE.md pitfall 12: loading per session cost
141 MB each; cached, ~1 MB).

Examples
--------
>>> from workbench.apps import data
>>> city = data.city("reference")  # doctest: +SKIP
"""

from __future__ import annotations

import panel as pn
import pandas as pd
import xarray as xr

from workbench.apps import _data
from workbench.io.catalog import load_catalog, open_city

__all__ = ["city", "city_names", "zone_frame", "sensor_matrix", "zone_labels", "zone_series", "matrix_image",
           "key"]

#: points per curve (min-max: two per bin) and columns per raster that reach the browser
N_BINS, RASTER_COLUMNS, RASTER_ROWS = 600, 1200, 400


def key(window) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A time window as a hashable cache key."""
    return pd.Timestamp(window[0]), pd.Timestamp(window[1])


def city_names() -> dict[str, str]:
    """``{name: description}`` of the catalogued datasets the apps can open (raw feeds left out)."""
    return {k: v.get("description", "") for k, v in load_catalog().items() if v.get("kind") != "feed"}


@pn.cache(max_items=4)
def city(name: str = "reference") -> xr.DataTree:
    """The catalogued city ``name``, opened and loaded into memory once per process."""
    tree = open_city(name).load()  # boundary: the app's working copy, shared by every session
    return tree.map_over_datasets(_object_labels)


def _object_labels(ds: xr.Dataset) -> xr.Dataset:
    """Labels stored as numpy's StringDType become object arrays of ``str`` (what pandas,
    HoloViews and ``astype(str)`` expect)."""
    fix = {k: v.astype(object) for k, v in ds.variables.items() if v.dtype.kind == "T"}
    return ds.assign_coords({k: v for k, v in fix.items() if k in ds.coords}).assign(
        {k: v for k, v in fix.items() if k in ds.data_vars}) if fix else ds


@pn.cache(max_items=64)
def zone_frame(name: str, system: str, var: str) -> pd.DataFrame:
    """Per-zone series (time × zone) of one variable over the whole period."""
    return _data.zone_frame(city(name), system, var)


@pn.cache(max_items=32)
def sensor_matrix(name: str, system: str, var: str) -> xr.DataArray:
    """The sensor × time matrix of one variable over the whole period (sorted by zone)."""
    return _data.sensor_matrix(city(name), system, var)


@pn.cache(max_items=8)
def zone_labels(name: str) -> dict[str, str]:
    """``{"Z01 · Old Town": "Z01", ...}`` preceded by ``{"All zones": "all"}``."""
    zt = _data.zone_table(city(name))
    names = zt["zone_name"] if "zone_name" in zt else zt["zone"]
    return {"All zones": _data.ALL, **{f"{z} · {n}": z for z, n in zip(zt["zone"], names)}}


@pn.cache(max_items=64)
def zone_series(name: str, system: str, var: str, window: tuple) -> dict[str, dict]:
    """Every curve the series panel can show in ``window``, min-max downsampled, by zone:
    ``{"all": {zone: (t, y)}, "Z01": {sensor: (t, y)}, ...}``.

    Computed once per (dataset, system, variable, window) for every zone at once, so a zone
    change is a dictionary lookup.
    """
    lo, hi = key(window)
    out = {_data.ALL: _data.minmax(zone_frame(name, system, var).loc[lo:hi], N_BINS)}
    raw = _data.sensor_frame(city(name), system, var, window=(lo, hi))
    zones = _data.sensor_table(city(name), system).set_index("sensor")["zone"]
    for zone, cols in raw.columns.groupby(zones.reindex(raw.columns).to_numpy()).items():
        out[str(zone)] = _data.minmax(raw[cols], N_BINS)
    return out


@pn.cache(max_items=32)
def matrix_image(name: str, system: str, var: str, window: tuple) -> tuple:
    """The sensor × time matrix of ``window`` binned to at most ``RASTER_ROWS`` × ``RASTER_COLUMNS``
    (means): ``(times, values, row labels)``."""
    lo, hi = key(window)
    m = sensor_matrix(name, system, var).sel(time=slice(lo, hi))
    values, cols = _data.block_mean(m.values, RASTER_COLUMNS, axis=1)
    values, rows = _data.block_mean(values, RASTER_ROWS, axis=0)
    labels = [f"{s} ({z})" for s, z in zip(m["sensor"].values[rows], m["zone"].values[rows])]
    return m["time"].values[cols], values, labels
