"""The city state: every system's zonal indicators side by side, dims ``zone × time``.

:func:`city_state` rolls each system up to the districts with
:func:`workbench.analysis.to_zones` (sum or mean per the registry, with completeness),
averages to ``freq``, and puts them in one Dataset. Each variable keeps its canonical
``units`` and ``long_name`` and says where it came from (``system``, ``source`` = the node and
variable it was rolled up from, a ``history`` line); ``<var>_completeness`` (0–1) says how
much of it was measured. The ``/zones`` table rides along as coordinates (``zone_name``,
``lat``, ``lon``, ``population``, ``area_km2``) and its GeoJSON as an attribute, so the state
alone can draw a map.

Examples
--------
>>> from workbench.synth import make_city
>>> city = make_city(zones=4, sensors_per_system=8, days=7)
>>> st = city_state(city, freq="1h")
>>> dict(st["electric_load"].sizes)
{'zone': 4, 'time': 168}
>>> st["electric_load"].attrs["units"], st["electric_load"].attrs["source"]
('kW', '/energy/electric_load')
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry

__all__ = ["city_state", "system_nodes"]


def system_nodes(city: xr.DataTree) -> list[str]:
    """The city's system nodes, in registry order."""
    return [s for s in registry.SYSTEMS if s in city.children]


def _history(attrs: dict, line: str) -> dict:
    old = attrs.get("history", "")
    stamp = f"{pd.Timestamp.now('UTC'):%Y-%m-%dT%H:%M:%SZ}"
    return {**attrs, "history": (old + "\n" if old else "") + f"{stamp} {line}"}


def _kpis(city: xr.DataTree, zonal: dict[str, xr.Dataset], *, kpi_freq: str, time: xr.DataArray) -> dict[str, xr.DataArray]:
    """The registry's KPIs per zone and ``kpi_freq`` period, on the state's time axis.

    Zone-level formulas run on the zonal roll-ups the state already has (nothing is rolled
    up twice); sensor-level ones (``availability``) go through
    :func:`workbench.analysis.kpis` and cost one more pass over their variable's sensors.
    Each state step carries the value of the period that contains it.
    """
    from workbench.analysis import kpis
    from workbench.analysis.kpis import _SENSOR_LEVEL, FORMULAS, load_kpis

    table = load_kpis()
    out = {}
    sensor_level = [k for k, v in table.items() if v["formula"] in _SENSOR_LEVEL and v["system"] in city.children]
    direct = kpis(city, freq=kpi_freq, ids=sensor_level) if sensor_level else xr.Dataset()
    for kid, k in table.items():
        if kid in direct:
            val = direct[kid]
        elif k["system"] in zonal and k["variable"] in zonal[k["system"]]:
            x = zonal[k["system"]][k["variable"]].reset_coords(drop=True)
            val = FORMULAS[k["formula"]](x, freq=kpi_freq, **k["params"])
            val = val.drop_vars([c for c in val.coords if c not in val.dims], errors="ignore")
        else:
            continue
        attrs = {"units": k["units"], "long_name": k["long_name"], "system": k["system"], "good": k["good"],
                 "target": k["target"], "threshold_warning": k["thresholds"]["warning"],
                 "threshold_critical": k["thresholds"]["critical"], "formula": k["formula"], "kpi_id": kid,
                 "source": f"/{k['system']}/{k['variable']}", "kpi_period": kpi_freq,
                 "cell_methods": f"time: {k['formula']} (interval: {kpi_freq}; each step carries its period's value)"}
        out[kid] = _carry_forward(val.transpose("zone", "time"), time).assign_attrs(attrs)
    return out


def _take_last(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    out = np.take(np.asarray(x, dtype=np.float64), np.maximum(pos, 0), axis=-1)
    out[..., pos < 0] = np.nan
    return out


def _carry_forward(val: xr.DataArray, time: xr.DataArray) -> xr.DataArray:
    """``val.reindex(time=time, method="ffill")`` as one task per zone chunk: a dask reindex
    of a period series onto a finer axis makes a gather per output chunk (hundreds of tasks
    per KPI), while the KPI (zones × periods) is small enough for one time chunk."""
    pos = pd.DatetimeIndex(val.indexes["time"]).get_indexer(pd.DatetimeIndex(time.to_numpy()), method="ffill")
    if val.chunks is not None:
        val = val.chunk({"time": -1})
    out = xr.apply_ufunc(_take_last, val, kwargs={"pos": pos}, input_core_dims=[["time"]], output_core_dims=[["new_time"]],
                         exclude_dims={"time"}, dask="parallelized", output_dtypes=[np.float64],
                         dask_gufunc_kwargs={"output_sizes": {"new_time": len(pos)}})
    return out.rename(new_time="time").assign_coords(time=time)


def city_state(city: xr.DataTree, *, freq: str | None = "1h", kpi_freq: str | None = "1D") -> xr.Dataset:
    """Every system's zonal indicators in one Dataset (lazy).

    Parameters
    ----------
    city
        A workbench city (system nodes ``sensor × time``, ``/zones``).
    freq
        Averaging interval (a pandas offset such as ``"1h"``), or None to keep the city's.
    kpi_freq
        Period of the KPIs of ``registry/kpis.yml`` (``workbench.analysis.kpis``), held
        beside the indicators under their KPI ids (each step carries the value of its
        period, attrs ``kpi_id``, ``good``, ``target``, thresholds); None leaves them out.

    Returns
    -------
    xarray.Dataset
        Dims ``(zone, time)``: one variable per registered variable present, plus
        ``<var>_completeness``.
    """
    from workbench.analysis import to_zones

    zones = city["zones"].to_dataset() if "zones" in city.children else None
    parts = []
    zonal: dict[str, xr.Dataset] = {}
    for system in system_nodes(city):
        ds = city[system].to_dataset()
        keep = [v for v in ds.data_vars if not str(v).endswith("_qc") and "time" in ds[v].dims]
        if not keep:
            continue
        z = to_zones(ds[keep + [f"{v}_qc" for v in keep if f"{v}_qc" in ds]], zones=zones)
        for v in keep:
            z[v].attrs.update(system=system, source=f"/{system}/{v}")
        parts.append(z)
        zonal[system] = z
    if not parts:
        raise ValueError("the city has no system node with a time axis to build a state from.")
    state = xr.merge(parts, compat="override", combine_attrs="drop_conflicts")
    if freq is not None:
        attrs = {v: dict(state[v].attrs) for v in state.data_vars}
        # contiguous periods: flox's "flox" engine (reduceat) needs no JIT; the numbagg engine
        # it would pick costs ~1 s of compilation per kernel in every fresh process
        state = state.resample(time=freq, label="left", closed="left").mean(engine="flox").transpose("zone", "time")
        for v, a in attrs.items():
            state[v].attrs = a
            if "cell_methods" in a:
                state[v].attrs["cell_methods"] = f"{a['cell_methods']} time: mean (interval: {freq})"
    if kpi_freq is not None:
        kp = _kpis(city, zonal, kpi_freq=kpi_freq, time=state["time"])
        # a sensor-level KPI knows only the zones with sensors: align on the state's zones
        state = state.assign({k: v.reindex(zone=state["zone"].to_numpy()).assign_coords(zone=state["zone"]) for k, v in kp.items()})
    if zones is not None:
        for c in ("population", "area_km2"):
            if c in zones:
                state = state.assign_coords({c: ("zone", np.asarray(zones[c].values), dict(zones[c].attrs))})  # boundary: small zone table
        state.attrs["geojson"] = zones.attrs.get("geojson", "")
    for v in state.data_vars:
        state[v].attrs = _history(state[v].attrs, f"city_state(freq={freq!r})")
    state.attrs.update(title="city state", long_name="city state: zonal indicators of every system",
                       source=city.attrs.get("source", ""))
    state.attrs = _history({k: v for k, v in state.attrs.items() if k != "history"}, f"city_state(freq={freq!r})")
    return state
