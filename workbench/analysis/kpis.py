"""Key performance indicators declared in ``workbench/registry/kpis.yml``.

Each KPI names a *formula* from a fixed table of functions (no free Python is evaluated),
the variable it reads, its units, which way is good, a target and warning / critical
thresholds. :func:`kpis` computes every KPI per zone and period; :func:`kpi_status` turns
values into 0 (ok), 1 (warning), 2 (critical).

Formulas (each ``(x, *, freq, **params) -> (zone, time)``; ``x`` is the zone series from
:func:`~workbench.analysis.to_zones`, or for ``availability`` the sensor series):

- ``peak_to_average``: period maximum / period mean.
- ``window_ratio(start_hour, end_hour)``: mean inside the daily window / period mean
  (minimum night flow over average flow, the classic leak indicator).
- ``congestion(free_flow_quantile)``: 1 − period-mean speed / free-flow speed (the zone's
  speed quantile over the whole record).
- ``availability(fraction_of_typical)``: share of sensor-intervals whose value is above that
  fraction of the sensor's median for the time of day (weekday/weekend apart).
- ``backlog(capacity_factor)``: open requests at the end of each period of a queue served
  at ``capacity_factor`` × the mean arrival rate (Lindley's recursion); arrivals are the
  zone's request rate × the step.
- ``exceedance_hours(threshold)``: hours whose hourly mean is above ``threshold``.

Examples
--------
>>> from workbench.synth import make_city
>>> from workbench.analysis import kpis
>>> k = kpis(make_city(zones=4, sensors_per_system=8, days=7), freq="1D")
>>> sorted(k.data_vars)[:3]
['congestion_index', 'network_availability', 'night_flow_ratio']
>>> dict(k["night_flow_ratio"].sizes)
{'zone': 4, 'time': 7}
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any, Callable

import numba
import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry
from workbench.analysis._common import history
from workbench.analysis.profiles import expand_profile, profile
from workbench.analysis.zones import to_zones

__all__ = ["load_kpis", "kpis", "kpi_status", "FORMULAS"]

_FIELDS = {"long_name": str, "system": str, "variable": str, "formula": str, "units": str,
           "good": str, "target": (int, float), "thresholds": dict}


def _per(x: xr.DataArray, freq: str, how: str) -> xr.DataArray:
    """Reduce each period. Periods are contiguous runs, so flox's "flox" engine fits, and it
    needs no JIT (the numbagg engine costs 7 s of compilation per process for a max).
    ``"last"`` is the period's last value with ``skipna=False`` (callers pass series without
    gaps): the NaN-skipping ``last`` is a numbagg kernel, ~2 s of JIT per process."""
    r = x.resample(time=freq)
    return r.last(skipna=False) if how == "last" else getattr(r, how)(engine="flox")


def peak_to_average(x: xr.DataArray, *, freq: str) -> xr.DataArray:
    return _per(x, freq, "max") / _per(x, freq, "mean")


def window_ratio(x: xr.DataArray, *, freq: str, start_hour: int = 2, end_hour: int = 5) -> xr.DataArray:
    hour = x.indexes["time"].hour.to_numpy()
    inside = xr.DataArray((hour >= start_hour) & (hour < end_hour), dims="time", coords={"time": x["time"]})
    return _per(x.where(inside), freq, "mean") / _per(x, freq, "mean")


def congestion(x: xr.DataArray, *, freq: str, free_flow_quantile: float = 0.95) -> xr.DataArray:
    xx = x.chunk({"time": -1}) if x.chunks is not None else x
    # numpy's nanquantile: numbagg's costs 25 s of JIT per process for 12 numbers
    free = xr.apply_ufunc(np.nanquantile, xx, input_core_dims=[["time"]], kwargs={"q": free_flow_quantile, "axis": -1},
                          dask="parallelized", output_dtypes=[np.float64])
    return 1 - _per(x, freq, "mean") / free


def availability(x: xr.DataArray, *, freq: str, fraction_of_typical: float = 0.1) -> xr.DataArray:
    typical = expand_profile(profile(x, by="timeofday", stat="median", daytype=True), x, by="timeofday", daytype=True)
    up = (x > fraction_of_typical * typical).where(x.notnull()).astype(np.float64)
    up.name = "up"
    zoned = to_zones(up.assign_coords(zone=x["zone"]), how="mean")["up"]
    return _per(zoned, freq, "mean")


@numba.njit(cache=True)
def _lindley(a: np.ndarray, c: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        b = 0.0
        for t in range(a.shape[1]):
            v = a[i, t]
            if v == v:  # not NaN
                b = max(0.0, b + v - c[i])
            out[i, t] = b
    return out


def _backlog_kernel(a: np.ndarray, factor: float) -> np.ndarray:
    shape = a.shape
    a2 = np.ascontiguousarray(a.reshape(-1, shape[-1]), dtype=np.float64)
    c = factor * np.nanmean(a2, axis=-1) if a2.shape[-1] else np.zeros(a2.shape[0])
    return _lindley(a2, np.nan_to_num(c)).reshape(shape)


def backlog(x: xr.DataArray, *, freq: str, capacity_factor: float = 1.2) -> xr.DataArray:
    t = x.indexes["time"]
    step_h = (t[1] - t[0]) / pd.Timedelta("1h")
    arrivals = (x * step_h).transpose(..., "time")
    if arrivals.chunks is not None:
        arrivals = arrivals.chunk({"time": -1})
    queue = xr.apply_ufunc(_backlog_kernel, arrivals, input_core_dims=[["time"]], output_core_dims=[["time"]],
                           kwargs={"factor": capacity_factor}, dask="parallelized", output_dtypes=[np.float64])
    return _per(queue, freq, "last")  # the queue has no NaN (the recursion carries over gaps)


def exceedance_hours(x: xr.DataArray, *, freq: str, threshold: float = 25.0) -> xr.DataArray:
    hourly = _per(x, "1h", "mean")
    return _per((hourly > threshold).where(hourly.notnull()), freq, "sum")


#: the formula language: a name in kpis.yml maps to one of these functions
FORMULAS: dict[str, Callable[..., xr.DataArray]] = {
    "peak_to_average": peak_to_average,
    "window_ratio": window_ratio,
    "congestion": congestion,
    "availability": availability,
    "backlog": backlog,
    "exceedance_hours": exceedance_hours,
}
_SENSOR_LEVEL = {"availability"}


def _check(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    if not isinstance(data.get("kpis"), dict) or not data["kpis"]:
        raise registry.RegistryError("registry/kpis.yml: expected a non-empty 'kpis' mapping.")
    out = {}
    for kid, k in data["kpis"].items():
        where = f"registry/kpis.yml: KPI '{kid}'"
        if not str(kid).isidentifier():
            raise registry.RegistryError(f"{where}: ids are identifiers.")
        for f, typ in _FIELDS.items():
            if not isinstance(k.get(f), typ):
                raise registry.RegistryError(f"{where}: field '{f}' is missing or not a {typ}.")
        if k["system"] not in registry.SYSTEMS:
            raise registry.RegistryError(f"{where}: system must be one of {', '.join(registry.SYSTEMS)}, got {k['system']!r}.")
        try:
            var = registry.variable(k["variable"])
        except KeyError as exc:
            raise registry.RegistryError(f"{where}: {exc.args[0]}") from None
        if var["system"] != k["system"]:
            raise registry.RegistryError(f"{where}: variable {k['variable']!r} belongs to {var['system']!r}, not {k['system']!r}.")
        if k["formula"] not in FORMULAS:
            raise registry.RegistryError(f"{where}: formula must be one of {', '.join(FORMULAS)}, got {k['formula']!r}.")
        params = dict(k.get("params") or {})
        allowed = set(inspect.signature(FORMULAS[k["formula"]]).parameters) - {"x", "freq"}
        extra = set(params) - allowed
        if extra:
            raise registry.RegistryError(f"{where}: formula {k['formula']!r} takes {sorted(allowed)}, not {sorted(extra)}.")
        if not all(isinstance(v, (int, float)) for v in params.values()):
            raise registry.RegistryError(f"{where}: params must be numbers.")
        if k["good"] not in ("low", "high"):
            raise registry.RegistryError(f"{where}: good must be 'low' or 'high', got {k['good']!r}.")
        th = k["thresholds"]
        if set(th) != {"warning", "critical"} or not all(isinstance(v, (int, float)) for v in th.values()):
            raise registry.RegistryError(f"{where}: thresholds must be numbers named warning and critical.")
        order = (k["target"], th["warning"], th["critical"])
        ok = order[0] <= order[1] <= order[2] if k["good"] == "low" else order[0] >= order[1] >= order[2]
        if not ok:
            raise registry.RegistryError(f"{where}: target, warning, critical must run from good to bad ({k['good']} is good), got {order}.")
        from workbench.units import UnitError, check_unit

        try:
            check_unit(k["units"])
        except UnitError as exc:
            raise registry.RegistryError(f"{where}: {exc}") from None
        out[kid] = {**k, "params": params, "id": kid}
    return out


@lru_cache(maxsize=1)
def load_kpis() -> dict[str, dict[str, Any]]:
    """The KPIs of ``workbench/registry/kpis.yml``, validated, keyed by id."""
    return _check(registry.load_yaml("kpis.yml"))


def _node(city, system: str) -> xr.Dataset:
    node = city[system]
    return node.to_dataset() if isinstance(node, xr.DataTree) else node


def kpis(city: xr.DataTree, *, freq: str = "1D", ids: list[str] | None = None) -> xr.Dataset:
    """Compute KPIs per zone and period.

    Parameters
    ----------
    city
        The city tree (or a mapping ``system -> Dataset``); ``/zones`` is used for the zone
        order when present.
    freq
        Period of each KPI value (a pandas offset: ``"1D"``, ``"7D"``, ``"1h"``).
    ids
        KPIs to compute (default: all in the registry).

    Returns
    -------
    xarray.Dataset
        One variable per KPI, dims ``(zone, time)`` (time = period start), attrs from the
        registry (``units``, ``long_name``, ``good``, ``target``, ``thresholds``). Lazy.
    """
    table = load_kpis()
    ids = list(table) if ids is None else ids
    unknown = set(ids) - set(table)
    if unknown:
        raise KeyError(f"unknown KPI ids {sorted(unknown)}; known: {', '.join(table)}.")
    zones = _node(city, "zones") if "zones" in city else None
    zoned: dict[str, xr.Dataset] = {}
    out = {}
    for kid in ids:
        k = table[kid]
        node = _node(city, k["system"])
        if k["formula"] in _SENSOR_LEVEL:
            x = node[k["variable"]]
            if f"{k['variable']}_qc" in node:
                from workbench.analysis._common import valid_mask

                x = x.where(valid_mask(node, k["variable"]))
        else:
            if k["system"] not in zoned:
                zoned[k["system"]] = to_zones(node, zones=zones)
            x = zoned[k["system"]][k["variable"]].reset_coords(drop=True)
        val = FORMULAS[k["formula"]](x, freq=freq, **k["params"])
        val = val.drop_vars([c for c in val.coords if c not in val.dims], errors="ignore").transpose("zone", "time")
        attrs = {"units": k["units"], "long_name": k["long_name"], "system": k["system"], "good": k["good"],
                 "target": k["target"], "threshold_warning": k["thresholds"]["warning"],
                 "threshold_critical": k["thresholds"]["critical"], "formula": k["formula"], "kpi_id": kid}
        out[kid] = val.assign_attrs(history(attrs, f"kpis({kid!r}, formula={k['formula']!r}, params={k['params']}, freq={freq!r})"))
    return xr.Dataset(out, attrs=history({"freq": freq}, f"kpis(freq={freq!r}, ids={ids})"))


def kpi_status(ds: xr.Dataset) -> xr.Dataset:
    """0 = ok, 1 = warning, 2 = critical for each KPI value (NaN stays NaN)."""
    out = {}
    for name, v in ds.data_vars.items():
        w, c = v.attrs["threshold_warning"], v.attrs["threshold_critical"]
        if v.attrs["good"] == "low":
            s = (v >= w).astype(float) + (v >= c).astype(float)
        else:
            s = (v <= w).astype(float) + (v <= c).astype(float)
        out[name] = s.where(v.notnull()).assign_attrs(
            units="1", long_name=f"status of {v.attrs['long_name']} (0 ok, 1 warning, 2 critical)",
            flag_values=[0, 1, 2], flag_meanings="ok warning critical")
    return xr.Dataset(out, attrs=history({}, "kpi_status()"))
