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

import numba
import numpy as np
import pandas as pd
import xarray as xr

from workbench.perception._kernels import group_members

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


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _median_of(buf: np.ndarray, m: int) -> float:  # pragma: no cover - numba
    """Median of ``buf[:m]`` (no NaN inside), reordering it in place; NaN when ``m == 0``.

    Insertion sort for a few values, else quickselect (Hoare partition, middle pivot) for the
    upper middle and, for an even count, the largest value below it.
    """
    if m == 0:
        return np.nan
    h = m // 2
    if m <= 24:
        for i in range(1, m):
            v = buf[i]
            j = i - 1
            while j >= 0 and buf[j] > v:
                buf[j + 1] = buf[j]
                j -= 1
            buf[j + 1] = v
        return buf[h] if m % 2 else 0.5 * (buf[h - 1] + buf[h])
    lo, hi = 0, m - 1
    while lo < hi:
        pivot = buf[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
        if h <= j:
            hi = j
        elif h >= i:
            lo = i
        else:
            break
    upper = buf[h]
    if m % 2:
        return upper
    below = buf[0]
    for k in range(1, h):
        if buf[k] > below:
            below = buf[k]
    return 0.5 * (below + upper)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _residual_rows(x: np.ndarray, order: np.ndarray, bounds: np.ndarray, codes: np.ndarray,
                   additive: bool) -> np.ndarray:  # pragma: no cover - numba
    """Residual of each row of ``x`` (sensor × time) against its per-key NaN-median over time.

    ``order`` lists the steps key by key (``bounds`` delimit each key), ``codes`` is the key
    of each step. The relative form floors the normal at a tenth of its mean over the steps
    (the mean of the slot medians weighted by their steps). Releases the GIL.
    """
    n, t = x.shape
    k = len(bounds) - 1
    out = np.empty((n, t))
    med = np.empty(k)
    buf = np.empty(max(1, np.max(bounds[1:] - bounds[:-1])) if k else 1)
    for i in range(n):
        tot, cnt = 0.0, 0
        for j in range(k):
            m = 0
            for p in range(bounds[j], bounds[j + 1]):
                v = x[i, order[p]]
                if v == v:
                    buf[m] = v
                    m += 1
            med[j] = _median_of(buf, m)
            if med[j] == med[j]:
                tot += med[j] * (bounds[j + 1] - bounds[j])
                cnt += bounds[j + 1] - bounds[j]
        floor = 0.1 * tot / cnt if cnt else np.nan
        for s in range(t):
            normal = med[codes[s]]
            if additive:
                out[i, s] = x[i, s] - normal
            elif normal != normal or floor != floor:
                out[i, s] = np.nan
            else:
                out[i, s] = x[i, s] / max(normal, floor) - 1.0
    return out


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _group_medians(r: np.ndarray, x: np.ndarray, members: np.ndarray, bounds: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    """Per group (rows ``members[bounds[g]:bounds[g+1]]``) and step: the NaN-median of ``r``
    over the group's rows, and how many rows of ``x`` are not NaN — shape ``(group, 2, time)``,
    float32 (the median computed in float64, then rounded; counts exact below 2**24)."""
    g, t = len(bounds) - 1, r.shape[1]
    out = np.empty((g, 2, t), dtype=np.float32)
    buf = np.empty(max(1, r.shape[0]))
    for z in range(g):
        for s in range(t):
            m = 0
            n = 0
            for p in range(bounds[z], bounds[z + 1]):
                v = r[members[p], s]
                if v == v:
                    buf[m] = v
                    m += 1
                n += x[members[p], s] == x[members[p], s]
            out[z, 0, s] = _median_of(buf, m)
            out[z, 1, s] = n
    return out


def _key_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps sorted by key, the bounds of each key's run, and each step's key code."""
    uniq, codes = np.unique(keys, return_inverse=True)
    return *group_members(codes, len(uniq)), codes.astype(np.int64)


_SLOT_ORDERS: dict[tuple, tuple] = {}


def _slot_order(time: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_key_order` of :func:`slot_keys`, the *same* arrays for every variable on the same
    time axis: a task graph pickles a shared object once (12 copies of a year's arrays
    made the graph sent to a cluster ~7 MB larger)."""
    key = (len(time), time.asi8[:1].tobytes(), time.asi8[-1:].tobytes(), hash(time.asi8.tobytes()))
    if key not in _SLOT_ORDERS:
        if len(_SLOT_ORDERS) > 8:
            _SLOT_ORDERS.clear()
        _SLOT_ORDERS[key] = _key_order(slot_keys(time))
    return _SLOT_ORDERS[key]


def _residual_kernel(x: np.ndarray, keys: np.ndarray, additive: bool) -> np.ndarray:
    """Residual of ``x`` (..., time) against its per-key median over time (numba, no GIL)."""
    if x.size == 0:
        return np.full(x.shape, np.nan)
    x2 = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1]))
    return _residual_rows(x2, *_key_order(keys), bool(additive)).reshape(x.shape)


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


def _zone_block(x: np.ndarray, *, slots: tuple, groups: list, additive: bool, block_info=None) -> np.ndarray:
    """Residuals of a zone-complete block of sensors, then each zone's median of them."""
    b = block_info[0]["chunk-location"][0] if block_info else 0
    members, bounds = groups[b]
    x = np.ascontiguousarray(x, dtype=np.float64)
    r = _residual_rows(x, *slots, bool(additive)) if x.size else np.empty(x.shape)
    return _group_medians(r, x, members, bounds)


def _zone_signal(da: xr.DataArray, *, additive: bool) -> tuple[xr.DataArray, xr.DataArray]:
    """Median over each zone's sensors of ``da``'s residuals (float32), and how many sensors
    reported (int16; int32 for zones of 32,768 sensors or more).

    Lazy when ``da`` is dask-backed: each task gets whole zones (one rechunk when the sensor
    axis is split: sensors gathered in zone order — the same gather, with the same keys, as
    perception's ``zone_map``, so one ``dask.compute`` of both does it once), computes the
    residuals and the zone medians in one numba pass (no GIL), and returns ``zones × time``.
    """
    from workbench.perception._zoned import zone_codes, zone_order

    name = da.name
    ds = da.transpose("sensor", "time").to_dataset(name=name)
    codes = zone_codes(ds)
    uniq = np.unique(np.asarray(ds["zone"].to_numpy()).astype(str))  # boundary: small sensor coordinate
    keys = _slot_order(pd.DatetimeIndex(ds.indexes["time"]))
    ds, codes = zone_order(ds, codes)  # no-op unless zones are split between sensor chunks
    da = ds[name].chunk({"time": -1}) if ds[name].chunks is not None else ds[name]
    spans = np.cumsum((0, *(da.chunks[0] if da.chunks is not None else (da.sizes["sensor"],))))
    groups, n_zones, seq = [], [], []
    for lo, hi in zip(spans[:-1], spans[1:]):
        present, local = np.unique(codes[lo:hi], return_inverse=True)
        groups.append(group_members(local, len(present)))
        n_zones.append(len(present))
        seq.extend(present)
    kw = dict(slots=keys, groups=groups, additive=additive)
    if da.chunks is None:
        out = _zone_block(np.asarray(da.values), **kw)  # boundary: in-memory input (no dask)
    else:
        out = da.data.map_blocks(_zone_block, chunks=(tuple(n_zones), (2,), (da.sizes["time"],)), new_axis=1,
                                 dtype=np.float32, meta=np.empty((0, 0, 0), dtype=np.float32), **kw)
    if np.any(np.diff(seq) < 0):  # whole zones per chunk, but chunks not in zone order
        out = out[np.argsort(seq, kind="stable")]
    coords = {"zone": np.asarray(uniq, dtype=object), "time": da["time"]}
    med = xr.DataArray(out[:, 0], dims=("zone", "time"), coords=coords)
    largest = max((int(np.diff(b).max()) for _, b in groups if len(b) > 1), default=0)  # most sensors in a zone
    return med, xr.DataArray(out[:, 1].astype(np.int16 if largest < 2**15 else np.int32), dims=("zone", "time"), coords=coords)


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
        One variable per input variable (relative change, or °C for temperature; float32:
        a 3-year city of 40 zones holds 12 of them), plus ``n_<variable>``: how many sensors
        reported at each step (completeness; int16).
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
        additive = var in ADDITIVE
        med, cnt = _zone_signal(ds[var], additive=additive)
        attrs = {"units": ds[var].attrs.get("units", "") if additive else "1",
                 "long_name": f"{ds[var].attrs.get('long_name', var)} residual against its normal",
                 "history": f"sensor_residuals(variable={var!r}, additive={additive})"}
        out[var] = med.assign_attrs(attrs, system=system)
        out[f"n_{var}"] = cnt.assign_attrs(ds[var].attrs, long_name=f"sensors reporting {var}", units="1")
    return xr.Dataset(out, attrs={"history": "zone_residuals: median over each zone's sensors of residuals against weekday/weekend slot medians"})
