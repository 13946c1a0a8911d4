"""Zone-level residual signals: how far each district is from its own normal, per variable.

Incident fusion needs, for every zone and time step, "how unusual is this system here, and
in which direction". The recipe (documented in ``docs/integration.md``):

1. per sensor, a robust *normal* for each slot of the day, separately for weekdays and
   weekends: the median over all days of the record (an event lasting hours to a few days
   barely moves a median over four weeks);
2. per reading, the residual against that normal: a difference for temperature (°C), a
   relative change for everything else (``x / normal - 1``), with the normal floored at a
   tenth of its daily mean so a quiet night slot does not blow up the ratio;
3. per zone, the **median over the zone's sensors** of those residuals: a single faulty
   sensor (gap, flatline, spike, drift) cannot move a median of three or more, which is what
   keeps a sensor fault from becoming an incident.

This is integration-specific (a zone roll-up of *residuals*, not of values, and medians rather
than sums); the perception and analysis stages own the per-sensor anomaly scores and the
roll-up of values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["ADDITIVE", "slot_keys", "sensor_residuals", "zone_residuals"]

#: variables whose residual is a difference (in their unit) rather than a relative change
ADDITIVE = frozenset({"air_temperature"})
#: variables left out of incident signals (intermittent, no "normal" to compare with)
_SKIP = frozenset({"rainfall"})


def slot_keys(time: pd.DatetimeIndex) -> np.ndarray:
    """Group key per step: slot of the day, plus an offset for weekends (int64)."""
    time = pd.DatetimeIndex(time)
    minutes = time.hour * 60 + time.minute
    step = int(np.median(np.diff(time.asi8)) // 60_000_000_000) if len(time) > 1 else 60
    step = max(step, 1)
    slots = 1440 // step if 1440 % step == 0 else 1440
    slot = (np.asarray(minutes) // step).astype(np.int64)
    weekend = np.asarray(time.day_of_week >= 5, dtype=np.int64)
    return slot + weekend * slots


def _slot_medians(x: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per-key NaN-median over time of each row of ``x`` (sensor × time), broadcast back
    to every step: time is sorted by key once, then each key's steps are one contiguous
    slice for bottleneck's ``nanmedian`` (no per-key fancy-index copies)."""
    import bottleneck as bn

    uniq, codes = np.unique(keys, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniq)))]
    xs = x[:, order]
    med = np.empty((x.shape[0], len(uniq)))
    for k in range(len(uniq)):
        med[:, k] = bn.nanmedian(xs[:, bounds[k]:bounds[k + 1]], axis=1)
    del xs  # the sorted copy goes before the full-size broadcast is made
    return med[:, codes]


def _residual_kernel(x: np.ndarray, keys: np.ndarray, additive: bool) -> np.ndarray:
    """Residual of ``x`` (sensor × time) against its per-key median over time."""
    if x.size == 0:
        return np.full(x.shape, np.nan)
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slots of a dead sensor stay NaN
        normal = _slot_medians(x2, keys)
        # in place on ``normal`` (a fresh full-size array): one full-size output instead of
        # three temporaries per chunk; the same values
        if additive:
            return np.subtract(x2, normal, out=normal).reshape(x.shape)
        floor = 0.1 * np.nanmean(normal, axis=1, keepdims=True)
        out = np.maximum(normal, floor, out=normal)
        np.divide(x2, out, out=out)
        out -= 1.0
    return out.reshape(*lead, x.shape[-1])


def sensor_residuals(ds: xr.Dataset, variable: str) -> xr.DataArray:
    """Residual of one variable against each sensor's own weekday/weekend daily profile.

    Lazy when ``ds`` is dask-backed (one task per sensor chunk; the time axis must be one
    chunk, as the workbench's chunking rule says).

    Examples
    --------
    >>> from workbench.synth import make_city
    >>> city = make_city(zones=2, sensors_per_system=4, days=7)
    >>> r = sensor_residuals(city["energy"].to_dataset(), "electric_load")
    >>> r.dims
    ('sensor', 'time')
    """
    da = ds[variable]
    keys = slot_keys(pd.DatetimeIndex(ds.indexes["time"]))
    additive = variable in ADDITIVE
    if da.chunks is not None:
        da = da.chunk({"time": -1})
    res = xr.apply_ufunc(
        _residual_kernel, da, kwargs={"keys": keys, "additive": additive},
        input_core_dims=[["time"]], output_core_dims=[["time"]],
        dask="parallelized", output_dtypes=[np.float64],
    ).transpose("sensor", "time")
    unit = da.attrs.get("units", "") if additive else "1"
    res.attrs = {
        "units": unit,
        "long_name": f"{da.attrs.get('long_name', variable)} residual against its normal",
        "history": f"sensor_residuals(variable={variable!r}, additive={additive})",
    }
    return res.rename(variable)


def _one_sensor_chunk(res: xr.DataArray, *, target_bytes: float = 100e6) -> xr.DataArray:
    """The one deliberate rechunk (docs/scale.md): all sensors in one chunk, time split to
    keep ~100 MB chunks. A grouped median over several sensor chunks fails in flox 0.11
    ("Reindexing only valid with uniquely valued Index objects"); a 10,000-sensor city
    has several sensor chunks per system."""
    if res.chunks is None or len(res.chunks[res.get_axis_num("sensor")]) == 1:
        return res
    n_sensor, n_time = res.sizes["sensor"], res.sizes["time"]
    t = max(1, min(n_time, int(target_bytes // (n_sensor * res.dtype.itemsize))))
    return res.chunk({"sensor": -1, "time": t})


def _zone_median_kernel(x: np.ndarray, *, codes: np.ndarray, n: int) -> np.ndarray:
    """NaN-median over the sensors (last axis) of each zone code: (..., sensor) → (..., zone)."""
    import bottleneck as bn

    out = np.full((*x.shape[:-1], n), np.nan)
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=n))]
    xs = x[..., order]
    for k in range(n):
        if bounds[k + 1] > bounds[k]:
            out[..., k] = bn.nanmedian(xs[..., bounds[k]:bounds[k + 1]], axis=-1)
    return out


def _zone_median(res: xr.DataArray, zone: xr.DataArray) -> xr.DataArray:
    """Median over each zone's sensors (zones sorted, as ``groupby`` gives them), lazy; the
    sensor axis must be one chunk (:func:`_one_sensor_chunk`). bottleneck on contiguous
    slices: ~5× faster than flox's grouped median (a sort per group) here."""
    # boundary: the zone labels, one string per sensor
    labels = np.asarray(zone.values).astype(str)  # boundary: small sensor coordinate
    uniq, codes = np.unique(labels, return_inverse=True)
    med = xr.apply_ufunc(
        _zone_median_kernel, res.drop_vars([c for c in res.coords if c not in ("time",)]),
        input_core_dims=[["sensor"]], output_core_dims=[["zone"]], kwargs={"codes": codes, "n": len(uniq)},
        dask="parallelized", output_dtypes=[np.float64], dask_gufunc_kwargs={"output_sizes": {"zone": len(uniq)}},
    )
    return med.assign_coords(zone=np.asarray(uniq, dtype=object)).transpose("zone", "time")


def zone_residuals(city: xr.DataTree, *, variables: dict[str, str] | None = None) -> xr.Dataset:
    """Median over each zone's sensors of every variable's residual: dims ``zone × time``.

    Parameters
    ----------
    city
        A workbench city (system nodes with dims ``sensor × time`` and a ``zone`` coordinate).
    variables
        ``{variable: system}`` to use; default: every variable of every system node except
        rainfall.

    Returns
    -------
    xarray.Dataset
        One variable per input variable (relative change, or °C for temperature), plus
        ``n_<variable>``: how many sensors reported at each step (completeness).
    """
    if variables is None:
        variables = {}
        for system in city.children:
            if system == "zones":
                continue
            for v in city[system].data_vars:
                if v.endswith("_qc") or v in _SKIP:
                    continue
                variables[str(v)] = system
    out = {}
    for var, system in variables.items():
        ds = city[system].to_dataset()
        res = _one_sensor_chunk(sensor_residuals(ds, var))
        zone = ds["zone"]
        med = _zone_median(res, zone)
        cnt = ds[var].notnull().groupby(zone).sum()
        out[var] = med.transpose("zone", "time").assign_attrs(res.attrs, system=system)
        out[f"n_{var}"] = cnt.transpose("zone", "time").assign_attrs(long_name=f"sensors reporting {var}", units="1")
    return xr.Dataset(out, attrs={"history": "zone_residuals: median over each zone's sensors of residuals against weekday/weekend slot medians"})
