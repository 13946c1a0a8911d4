"""CF discrete-sampling ``featureType = timeSeries`` files (NetCDF), and the way back.

Layouts read (CF 1.11 §9, Appendix H):

- orthogonal multidimensional: ``data(station, time)`` or ``data(time, station)``, ``time(time)``;
- incomplete multidimensional: ``data(station, obs)`` with ``time(station, obs)``;
- single station: ``data(time)`` with scalar ``lat``/``lon``;
- contiguous ragged: ``data(obs)``, ``time(obs)``, ``row_size(station)`` with
  ``sample_dimension``; indexed ragged: ``stationIndex(obs)`` with ``instance_dimension``.

The station id is the variable with ``cf_role = "timeseries_id"`` (bytes, NUL padding
stripped), else the station index. The variable label is the variable's name, or its
``standard_name`` when only that is registered; units come from the ``units`` attribute.
A record is one cell that is not missing by CF (``_FillValue``/``missing_value`` masked by
xarray): padding in an incomplete or orthogonal array is not an observation. Infinite values
are records and are quarantined. CDL text (``.cdl``) is not NetCDF: convert it with ``ncgen``.

Examples
--------
>>> cube, report = read_cf_timeseries("datasets/fixtures/cf_timeseries.nc")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry
from workbench.io._build import Collector
from workbench.io._source import file_sha256, open_source_error
from workbench.io.report import IngestReport, ReadError

__all__ = ["read_cf_timeseries", "to_cf_timeseries"]


def _open(path: Path) -> xr.Dataset:
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if not (magic.startswith(b"CDF") or magic.startswith(b"\x89HDF")):
        hint = " It looks like CDL text: convert it with `ncgen -o out.nc` first." if b"netcdf" in magic or path.suffix == ".cdl" else ""
        raise ReadError(f"{path}: not a NetCDF file (no CDF or HDF5 signature).{hint}")
    try:
        return xr.open_dataset(path, decode_times=True)
    except Exception as exc:  # engines raise OSError, ValueError, KeyError, ...
        raise ReadError(f"{path}: cannot be opened as NetCDF ({type(exc).__name__}: {exc}).") from None


def _text(values: np.ndarray) -> np.ndarray:
    out = []
    for v in np.atleast_1d(values).ravel():
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        out.append(str(v).rstrip("\x00").strip())
    return np.asarray(out, dtype=object)


def _by_attr(ds: xr.Dataset, key: str, value: str) -> str | None:
    for name, var in ds.variables.items():
        if str(var.attrs.get(key, "")).strip("“” ").lower() == value:
            return str(name)
    return None


def _label(name: str, var: xr.DataArray, variables: Mapping[str, str]) -> str:
    if name.lower() in variables or registry.resolve_alias(name):
        return name
    std = str(var.attrs.get("standard_name", "")).strip("“” ")
    return std if std and registry.resolve_alias(std) else name


def _station_layout(ds: xr.Dataset, path: Path) -> tuple[str | None, np.ndarray, np.ndarray, np.ndarray]:
    """(station dim, ids, lat, lon)."""
    id_var = _by_attr(ds, "cf_role", "timeseries_id")
    lat_name = _by_attr(ds, "standard_name", "latitude") or ("lat" if "lat" in ds.variables else None)
    lon_name = _by_attr(ds, "standard_name", "longitude") or ("lon" if "lon" in ds.variables else None)
    if id_var is not None and ds[id_var].ndim == 1:
        dim = ds[id_var].dims[0]
        ids = _text(ds[id_var].values)  # boundary: reader on in-memory input
    elif id_var is not None and ds[id_var].ndim == 0:
        dim, ids = None, _text(ds[id_var].values)  # boundary: reader on in-memory input
    elif lat_name is not None and ds[lat_name].ndim == 1 and ds[lat_name].dims[0] != "time":
        dim = ds[lat_name].dims[0]
        ids = np.asarray([str(i) for i in range(ds.sizes[dim])], dtype=object)
    else:
        dim, ids = None, np.asarray(["0"], dtype=object)
    n = len(ids)

    def along(name: str | None) -> np.ndarray:
        if name is None:
            return np.full(n, np.nan)
        v = np.asarray(ds[name].values, dtype="float64")  # boundary: reader on in-memory input
        return np.broadcast_to(v, (n,)).copy() if v.ndim == 0 else v.reshape(-1)[:n]

    return dim, ids, along(lat_name), along(lon_name)


def read_cf_timeseries(
    source: str | Path,
    *,
    variables: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> tuple[xr.DataTree, IngestReport]:
    """Read a CF ``timeSeries`` NetCDF file.

    Parameters
    ----------
    source
        Path to a NetCDF-3 or NetCDF-4 file.
    variables, units
        See :class:`workbench.io._build.Collector`; keys are NetCDF variable names.

    Returns
    -------
    (DataTree, IngestReport)
    """
    path = Path(source)
    open_source_error(path)
    ds = _open(path)
    feature = str(ds.attrs.get("featureType", "timeSeries"))
    if feature.lower() != "timeseries":
        raise ReadError(f"{path}: featureType is {feature!r}; this reader handles timeSeries only.")
    if "time" not in ds.variables:
        time_name = _by_attr(ds, "standard_name", "time") or _by_attr(ds, "axis", "t")
        if time_name is None:
            raise ReadError(f"{path}: no time variable (standard_name = 'time').")
        ds = ds.rename({time_name: "time"})
    dim, ids, lat, lon = _station_layout(ds, path)
    zone_var = "zone" if "zone" in ds.variables and dim and ds["zone"].dims == (dim,) else None
    zones = _text(ds[zone_var].values) if zone_var else np.full(len(ids), "", dtype=object)  # boundary: reader on in-memory input
    time = ds["time"]
    ragged = _by_attr(ds, "sample_dimension", time.dims[0]) if time.ndim == 1 else None
    indexed = next((n for n, v in ds.variables.items() if "instance_dimension" in v.attrs), None)
    station_of_obs = None
    if ragged is not None:
        sizes = np.asarray(ds[ragged].values, dtype="int64")  # boundary: reader on in-memory input
        station_of_obs = np.repeat(np.arange(len(sizes)), sizes)
    elif indexed is not None:
        station_of_obs = np.asarray(ds[indexed].values, dtype="int64")  # boundary: reader on in-memory input
    skip = {"time", str(dim), ragged, indexed, zone_var}
    skip |= {n for n, v in ds.variables.items() if v.attrs.get("cf_role") or v.attrs.get("standard_name") in ("latitude", "longitude", "height", "surface_altitude")}
    skip |= {n for n, v in ds.variables.items() if "flag_meanings" in v.attrs or v.ndim == 0 or n in ("lat", "lon", "alt")}
    variables = dict(variables or {})
    frames = []
    for name, var in ds.data_vars.items():
        if name in skip or (dim and var.dims == (dim,)) or "time" not in var.dims and not set(var.dims) & set(time.dims):
            continue
        label = _label(str(name), var, {k.lower(): v for k, v in variables.items()})
        if station_of_obs is not None:  # ragged: data(obs)
            sidx = station_of_obs
            t = np.asarray(time.values)  # boundary: reader on in-memory input
            v = np.asarray(var.values, dtype="float64")  # boundary: reader on in-memory input
        elif dim is None:  # single station
            v = np.asarray(var.values, dtype="float64").reshape(-1)  # boundary: reader on in-memory input
            t = np.asarray(time.values).reshape(-1)  # boundary: reader on in-memory input
            sidx = np.zeros(len(v), dtype="int64")
        else:
            other = [d for d in var.dims if d != dim]
            if len(other) != 1:
                continue
            v = np.asarray(var.transpose(dim, other[0]).values, dtype="float64")  # boundary: reader on in-memory input
            t = np.asarray(time.transpose(*[d for d in (dim, other[0]) if d in time.dims]).values)  # boundary: reader on in-memory input
            t = np.broadcast_to(t, v.shape) if t.ndim == 1 else t
            sidx = np.broadcast_to(np.arange(v.shape[0])[:, None], v.shape)
            v, t, sidx = v.ravel(), t.ravel(), sidx.ravel()
        keep = ~np.isnan(v)  # CF-missing cells are not records; inf is kept (and quarantined)
        sidx = sidx[keep]
        frames.append(
            pd.DataFrame(
                {
                    "sensor": ids[sidx],
                    "time": pd.Series(t[keep]),
                    "variable": label,
                    "value": v[keep],
                    "unit": str(var.attrs.get("units", "")),
                    "lat": lat[sidx],
                    "lon": lon[sidx],
                    "zone": zones[sidx],
                }
            )
        )
    ds.close()
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["sensor", "time", "variable", "value", "unit"])
    rows.insert(0, "row", np.arange(1, len(rows) + 1, dtype="int64"))
    collector = Collector(source=str(path), sha256=file_sha256(path), format="cf-netcdf", variables=variables, units=units)
    collector.add(rows)
    return collector.finish()


def to_cf_timeseries(tree: xr.DataTree) -> xr.Dataset:
    """The cube as one CF orthogonal ``timeSeries`` Dataset (``station × time``).

    Sensors and times of all systems are joined (missing cells are ``NaN``); ``station_name``
    carries ``cf_role = "timeseries_id"``. Write it with ``to_netcdf``; reading the file
    with :func:`read_cf_timeseries` gives back the same cube.
    """
    parts = []
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        keep = [n for n, v in ds.data_vars.items() if v.dims == ("sensor", "time") and not str(n).endswith("_qc")]
        if keep:
            parts.append(ds[keep])
    if not parts:
        raise ValueError("to_cf_timeseries: the tree has no (sensor, time) variables.")
    out = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts")
    out = out.rename({"sensor": "station"})
    out["station_name"] = ("station", np.asarray(out["station"].values, dtype=object), {"cf_role": "timeseries_id", "long_name": "station name"})  # boundary: a writer (small coordinate)
    out = out.drop_vars("station")
    for c in ("lat", "lon", "zone"):
        if c in out.coords:
            out = out.reset_coords(c)
    if "zone" in out:
        out["zone"] = out["zone"].astype(object)
    out.attrs = {"Conventions": "CF-1.11", "featureType": "timeSeries"}
    out["time"].encoding.update({"units": "seconds since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian", "dtype": "int64"})
    return out
