"""Helpers the perception modules share: thresholds, transforms, time steps, zone buddies.

Everything here stays lazy: the only values read into memory are coordinates (time stamps,
zone labels), which are small by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import bottleneck as bn
import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry

__all__ = [
    "thresholds_for", "transform", "time_median", "median_over", "median_of_rows", "step_of", "steps", "data_variables",
    "append_history", "map_systems", "zone_neighbours", "QUALITY_KEYS",
]

QUALITY_KEYS = ("gap_hours", "flatline_hours", "flatline_min_hours", "flatline_alpha", "spike_z", "spike_window",
                "drift_fraction", "drift_hours", "drift_min_hours", "min_buddies", "valid_min", "valid_max",
                "qc_transform", "qc_floor", "anomaly_min_effect", "spike_own_z",
                "anomaly_direction", "anomaly_model", "anomaly_pool", "anomaly_threshold", "anomaly_scan_hours",
                "anomaly_contrast_hours", "drift_spread", "anomaly_city",
                "anomaly_profile", "anomaly_corroborated_by", "anomaly_corroborated_threshold",
                "anomaly_absolute_effect", "anomaly_effect_hours", "anomaly_confirmed_by", "anomaly_confirmed_direction",
                "anomaly_pool_clip", "anomaly_corroborated_nearby", "anomaly_corroborated_direction",
                "anomaly_corroborated_min_effect", "lone_reference", "lone_spike_steps", "lone_spike_gain",
                "lone_spike_direction", "lone_drift_ramp")


@lru_cache(maxsize=1)
def _quality_defaults() -> dict[str, Any]:
    """The registry's ``quality:`` defaults (parsed once: YAML parsing costs ~0.1 s a call)."""
    return dict(registry.load_yaml("variables.yml").get("quality") or {})


def thresholds_for(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The quality thresholds of one variable: registry defaults, the variable's own entry,
    then ``overrides`` (either ``{key: value}`` for every variable or ``{variable: {key: value}}``).
    """
    v = registry.variable(name)
    out: dict[str, Any] = dict(_quality_defaults())
    out.setdefault("qc_transform", "log" if v["valid_min"] >= 0 else "linear")
    out.setdefault("qc_floor", 1e-3)
    out.setdefault("spike_own_z", 0.0)
    out.setdefault("anomaly_direction", "both")
    out.setdefault("anomaly_model", "robust")
    out.setdefault("anomaly_pool", "sensor")
    out.setdefault("anomaly_threshold", None)
    out.setdefault("anomaly_scan_hours", None)
    out.setdefault("anomaly_contrast_hours", None)
    out.setdefault("anomaly_city", False)
    out.setdefault("anomaly_profile", None)
    out.setdefault("anomaly_corroborated_by", None)
    out.setdefault("anomaly_corroborated_threshold", None)
    out.setdefault("anomaly_absolute_effect", None)
    out.setdefault("anomaly_effect_hours", None)
    out.setdefault("anomaly_confirmed_by", None)
    out.setdefault("anomaly_confirmed_direction", None)
    out.setdefault("anomaly_pool_clip", None)
    out.setdefault("anomaly_corroborated_nearby", None)
    out.setdefault("anomaly_corroborated_direction", None)
    out.setdefault("anomaly_corroborated_min_effect", None)
    for key in QUALITY_KEYS:
        if key in v:
            out[key] = v[key]
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping):
            if key == name:
                out.update(value)
        elif key in QUALITY_KEYS:
            out[key] = value
        elif key not in registry.load_variables():
            raise KeyError(f"unknown quality threshold {key!r}; known: {', '.join(QUALITY_KEYS)} (or a variable name).")
    if out["qc_transform"] not in ("log", "linear", "sqrt"):
        raise ValueError(f"{name}: qc_transform must be log, linear or sqrt, not {out['qc_transform']!r}.")
    return out


def _nanmedian_last(a: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return bn.nanmedian(a, axis=-1)


def median_over(x: xr.DataArray, dim: str, *, dtype: Any = None) -> xr.DataArray:
    """Median along ``dim`` (NaN-aware, lazy; ``dim`` gathered into one chunk if split).

    bottleneck through ``apply_ufunc``: xarray's and dask's ``median`` go through numbagg's
    ``nanmedian`` gufunc here, whose first call costs ~15 s of JIT compilation per process.
    """
    if x.chunks is not None and len(x.chunksizes[dim]) > 1:
        x = x.chunk({d: -1 if d == dim else "auto" for d in x.dims})
    return xr.apply_ufunc(_nanmedian_last, x, input_core_dims=[[dim]], dask="parallelized",
                          output_dtypes=[x.dtype if dtype is None else dtype])


def _valued_rows(a: np.ndarray) -> np.ndarray:
    """The rows of a (rows, time) block that hold a value at some step."""
    return a[~np.isnan(a).all(axis=1)]


def _nanmedian_first(a: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return bn.nanmedian(a, axis=0)


def median_of_rows(x: xr.DataArray, dim: str) -> xr.DataArray:
    """Median along ``dim`` of a (``dim``, time) array, NaN-aware (lazy); equal to
    :func:`median_over`. Rows that are NaN at every step count for nothing, so each block
    drops them before the rows are gathered: a zone's value held in one of its sensors' rows
    (``scores_block``'s ``rep``) then costs one row, not one per sensor."""
    import dask.array as da
    from dask import is_dask_collection

    x = x.transpose(dim, ...)
    if x.ndim != 2:
        raise ValueError(f"median_of_rows needs a ({dim}, time) array, not dims {x.dims}.")
    data = x.data
    if is_dask_collection(data):
        kept = data.map_blocks(_valued_rows, chunks=((np.nan,) * data.numblocks[0], data.chunks[1]), dtype=data.dtype)
        out = da.blockwise(_nanmedian_first, "t", kept, "st", concatenate=True, dtype=data.dtype)
    else:
        out = _nanmedian_first(_valued_rows(np.asarray(data)))
    other = x.dims[1]
    return xr.DataArray(out, dims=(other,), coords={c: v for c, v in x.coords.items() if v.dims == (other,)})


def time_median(x: xr.DataArray) -> xr.DataArray:
    """Median along time of each sensor (NaN-aware, lazy)."""
    return median_over(x, "time", dtype=np.float64)


def transform(x: xr.DataArray, kind: str) -> xr.DataArray:
    """The scale the spike, drift and anomaly tests work on (lazy).

    ``log``: a generalised log, ``log1p(x / (0.05 m))`` with ``m`` the sensor's median — log-like
    (multiplicative noise becomes additive) for readings well above 5 % of the median, linear
    near zero, so zero readings are finite. ``sqrt``: counts (Poisson noise). ``linear``: as is.
    """
    if kind == "linear":
        return x
    if kind == "sqrt":
        return np.sqrt(x.clip(min=0))
    m = time_median(x.where(x > 0))
    c = (0.05 * m).where(m > 0, 1.0)
    return np.log1p(x.clip(min=0) / c)


def step_of(time: xr.DataArray) -> pd.Timedelta:
    """The sampling interval of a time axis (its median spacing)."""
    t = pd.DatetimeIndex(time.to_numpy())  # boundary: the time coordinate is small and in memory
    if len(t) < 2:
        return pd.Timedelta("1h")
    step = pd.TimedeltaIndex(t[1:] - t[:-1]).median()  # unit-safe (pandas 3 may hold µs)
    return step if step > pd.Timedelta(0) else pd.Timedelta("1h")


def steps(hours: float | None, step: pd.Timedelta) -> int:
    """``hours`` as a whole number of steps (at least 1); 0 when ``hours`` is None."""
    if hours is None:
        return 0
    return max(1, int(np.ceil(pd.Timedelta(hours=float(hours)) / step - 1e-9)))


def data_variables(ds: xr.Dataset) -> list[str]:
    """Measured variables of a system Dataset: ``(sensor, time)`` variables that are not flags."""
    out = []
    for name, da in ds.data_vars.items():
        if set(da.dims) == {"sensor", "time"} and not str(name).endswith(("_qc", "_score", "_z", "_effect", "_completeness")):
            out.append(str(name))
    return out


def append_history(attrs: Mapping[str, Any], line: str) -> dict[str, Any]:
    """``attrs`` with one more history line (time-stamped, as CF and xclim do)."""
    out = dict(attrs)
    stamp = f"{pd.Timestamp.now('UTC'):%Y-%m-%dT%H:%M:%SZ}"
    out["history"] = (str(out["history"]) + "\n" if out.get("history") else "") + f"{stamp} {line}"
    return out


def map_systems(obj: xr.Dataset | xr.DataTree, func: Callable[[xr.Dataset], xr.Dataset]) -> xr.Dataset | xr.DataTree:
    """Apply ``func`` to a system Dataset, or to every system node of a city tree."""
    if isinstance(obj, xr.DataTree):
        nodes = {}
        for path, node in obj.subtree_with_keys:
            ds = node.to_dataset(inherit=False)
            if "sensor" in ds.dims and "time" in ds.dims and data_variables(ds):
                ds = func(ds)
            nodes["/" if path == "." else "/" + path] = ds
        return xr.DataTree.from_dict(nodes)
    if isinstance(obj, xr.Dataset):
        return func(obj)
    raise TypeError(f"expected an xarray Dataset (one system) or DataTree (a city), got {type(obj).__name__}.")


def zone_neighbours(city: Any) -> dict[str, list[str]] | None:
    """Each zone's adjacent zones from a city's ``/zones`` node (``None`` when it has none).

    Examples
    --------
    >>> z = xr.Dataset({"neighbours": ("zone", ["Z02", "Z01 Z03", "Z02"])}, coords={"zone": ["Z01", "Z02", "Z03"]})
    >>> zone_neighbours(xr.DataTree.from_dict({"/zones": z}))["Z02"]
    ['Z01', 'Z03']
    """
    if not isinstance(city, xr.DataTree) or "zones" not in city.children or "neighbours" not in city["zones"].data_vars:
        return None
    zn = city["zones"].to_dataset()
    # boundary: a handful of strings per zone
    return {str(z): str(n).split() for z, n in zip(zn["zone"].to_numpy(), zn["neighbours"].to_numpy())}
