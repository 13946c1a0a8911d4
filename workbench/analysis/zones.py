"""Zonal roll-ups: sensors → districts, with completeness and per-capita / per-km² forms.

Each variable combines by its registered aggregation (``sum`` for extensive quantities —
flows, loads, counts — and ``mean`` for intensive ones — speed, temperature, pressure).
Grouping is by the sensor's ``zone`` coordinate (its labels loaded: PERFORMANCE.md pitfall
4), through a fused one-pass kernel (``_rollup.py``; measured faster than flox's grouped
``nansum`` along the sensor axis with its masking temporaries).

Decisions (also in ``docs/analysis.md``):

- **Completeness** is one variable per input variable, ``<var>_completeness`` (dims
  ``zone × time``, 0–1): the fraction of the zone's sensors with a valid reading at that
  time. A reading is valid when present and, if ``<var>_qc`` exists, carrying no flag
  (a ``gap`` flag on a present value — a filled gap — is accepted).
- **Sums are scaled for missing sensors** (``scale_missing=True``): the zone total is the
  mean of the valid sensors × the number of sensors in the zone, so a dropout does not
  look like a drop in demand. ``scale_missing=False`` gives the plain sum of valid readings.
  Where no sensor is valid the value is NaN.
- Zones come from ``zones=`` (the ``/zones`` table: order kept, zones without sensors are
  all-NaN with completeness 0) or else from the sorted sensor labels.

Examples
--------
>>> from workbench.synth import make_city
>>> from workbench.analysis import to_zones
>>> city = make_city(zones=4, sensors_per_system=8, days=7)
>>> z = to_zones(city["energy"].ds, zones=city["zones"].ds)
>>> sorted(z.data_vars)
['electric_load', 'electric_load_completeness']
>>> dict(z["electric_load"].sizes)
{'zone': 4, 'time': 672}
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import xarray as xr

from workbench import registry
from workbench.analysis._common import bad_bits, data_vars, history, var_attrs
from workbench.analysis._rollup import zone_sum_count

__all__ = ["to_zones", "zone_labels"]

_HOW = ("sum", "mean")
_NORMALIZE = (None, "per_capita", "per_km2")


def zone_labels(obj: xr.Dataset | xr.DataArray, *, zone: str = "zone") -> np.ndarray:
    """The zone label of each sensor, in memory (PERFORMANCE.md pitfall 4).

    The coordinate is small (one string per sensor) but may be lazy when read from Zarr:
    loading it here is the one deliberate boundary of a roll-up.
    """
    if zone not in obj.coords:
        raise ValueError(f"expected a '{zone}' coordinate along 'sensor' to group by; coords are {list(obj.coords)}.")
    # boundary: the small label coordinate (one string per sensor) must be known to group by it
    return np.asarray(obj[zone].values).astype(object)  # boundary: small sensor coordinate


def _how_of(name: str, how: str | Mapping[str, str] | None) -> str:
    if isinstance(how, str):
        h = how
    elif isinstance(how, Mapping) and name in how:
        h = how[name]
    else:
        try:
            h = registry.variable(name)["aggregation"]
        except KeyError:
            raise KeyError(
                f"'{name}' is not a registered variable, so its aggregation is unknown; pass how={{'{name}': 'sum' or 'mean'}}."
            ) from None
    if h not in _HOW:
        raise ValueError(f"aggregation for '{name}' must be 'sum' or 'mean'; got {h!r}.")
    return h


def to_zones(
    ds: xr.Dataset | xr.DataArray,
    *,
    how: str | Mapping[str, str] | None = None,
    zones: xr.Dataset | None = None,
    normalize: str | None = None,
    scale_missing: bool = True,
    flags: bool = True,
) -> xr.Dataset:
    """Roll sensors up to zones.

    Parameters
    ----------
    ds
        Dataset (or one DataArray) with dims ``(sensor, time)`` and a ``zone`` coordinate
        along ``sensor``. ``<var>_qc`` flag variables are honoured, then dropped.
    how
        ``None`` (each variable's registered aggregation), ``"sum"`` / ``"mean"`` for all,
        or a mapping ``{variable: "sum" | "mean"}``.
    zones
        The ``/zones`` table (dim ``zone`` with ``population`` and ``area_km2``): fixes the
        zone order and is required for ``normalize``.
    normalize
        ``None``, ``"per_capita"`` (÷ population) or ``"per_km2"`` (÷ area). Applied to
        summed variables only (a mean speed per capita means nothing); means pass through.
    scale_missing
        Scale sums for sensors without a valid reading (see the module notes).
    flags
        Honour ``<var>_qc`` when present.

    Returns
    -------
    xarray.Dataset
        Dims ``(zone, time)``: each variable and ``<var>_completeness``, plus ``n_sensors``
        per zone for each system-wide count (as ``<var>_n_sensors`` attrs). Lazy when the
        input is.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2026-01-05", periods=2, freq="h")
    >>> da = xr.DataArray([[1.0, 2.0], [3.0, np.nan]], dims=("sensor", "time"),
    ...                   coords={"time": t, "zone": ("sensor", ["A", "A"])}, name="electric_load")
    >>> z = to_zones(da)
    >>> z["electric_load"].values.tolist(), z["electric_load_completeness"].values.tolist()
    ([[4.0, 4.0]], [[1.0, 0.5]])
    """
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=str(ds.name or "value"))
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of {_NORMALIZE}; got {normalize!r}.")
    if normalize and zones is None:
        raise ValueError(f"normalize={normalize!r} needs the zone table: pass zones=city['zones'].ds.")
    labels = zone_labels(ds)
    if zones is not None:
        order = np.asarray(zones["zone"].values).astype(object)  # boundary: the zone table's labels (one per zone)
        unknown = sorted(set(labels) - set(order))
        if unknown:
            raise ValueError(f"sensors name zones missing from the zone table: {unknown[:5]}.")
    else:
        order = np.array(sorted(set(labels)), dtype=object)
    n_sensors = np.array([(labels == z).sum() for z in order], dtype=float)
    names = data_vars(ds)
    if not names:
        raise ValueError("nothing to roll up: no data variable along 'time'.")
    hows = {n: _how_of(n, how) for n in names}

    pos = {z: i for i, z in enumerate(order)}
    zi = np.array([pos[z] for z in labels], dtype=np.int64)
    nsens = xr.DataArray(n_sensors, dims="zone", coords={"zone": order})

    out = {}
    for n in names:
        x = ds[n].transpose("sensor", "time")
        qc = ds[f"{n}_qc"].transpose("sensor", "time") if flags and f"{n}_qc" in ds else None
        sc = zone_sum_count(x.data, None if qc is None else qc.data, zi, len(order),
                            bad_bits(qc.attrs) if qc is not None else 0xFF)
        parts = xr.DataArray(sc, dims=("part", "zone", "time"), coords={"zone": order, "time": ds["time"]})
        total, cnt = parts[0].drop_vars("part", errors="ignore"), parts[1].drop_vars("part", errors="ignore")
        mean = total / cnt.where(cnt > 0)
        h = hows[n]
        if h == "mean":
            val = mean
        elif scale_missing:
            val = mean * nsens
        else:
            val = total.where(cnt > 0)
        attrs = var_attrs(n, ds[n])
        attrs["cell_methods"] = f"{attrs.get('cell_methods', 'time: point')} sensor: {h} within zone".strip()
        if normalize and h == "sum":
            if normalize == "per_capita":
                den = zones["population"].astype(np.float64)
                attrs["long_name"] = f"{attrs.get('long_name', n)} per resident"
                attrs["units"] = attrs.get("units", "1")  # residents are a count: units unchanged
            else:
                den = zones["area_km2"].astype(np.float64)
                attrs["long_name"] = f"{attrs.get('long_name', n)} per km²"
                attrs["units"] = f"({attrs.get('units', '1')})/km2"
            val = val / den.reset_coords(drop=True).where(den > 0)
            attrs["normalized_by"] = "population" if normalize == "per_capita" else "area_km2"
        attrs["n_sensors"] = n_sensors.astype(int).tolist()
        out[n] = val.transpose("zone", "time").assign_attrs(
            history(attrs, f"to_zones({n!r}, how={h!r}, normalize={normalize!r}, scale_missing={scale_missing})")
        )
        comp = (cnt / nsens.where(nsens > 0)).fillna(0.0)
        out[f"{n}_completeness"] = comp.transpose("zone", "time").assign_attrs(
            units="1", long_name=f"completeness of {attrs.get('long_name', n)} (fraction of sensor readings valid)",
            history=history({}, f"to_zones({n!r}) completeness")["history"],
        )
    res = xr.Dataset(out, attrs=history({k: v for k, v in ds.attrs.items() if k != "history"} | ({"history": ds.attrs["history"]} if "history" in ds.attrs else {}),
                                         f"to_zones(how={how!r}, normalize={normalize!r})"))
    if zones is not None:
        for c in ("lat", "lon"):
            if c in zones.coords:
                # boundary: zone-table coordinates (one number per zone)
                res = res.assign_coords({c: ("zone", np.asarray(zones[c].values), dict(zones[c].attrs))})  # boundary: small zone table
        if "zone_name" in zones:
            res = res.assign_coords(zone_name=("zone", np.asarray(zones["zone_name"].values).astype(object)))  # boundary: names
    return res
