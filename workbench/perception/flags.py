"""Quality flags: every reading gets a ``<var>_qc`` byte; data is never changed or deleted.

Bits (CF ``flag_masks`` / ``flag_meanings``), each an independent test:

=====  ============  ==================================================================
 mask  meaning       test
=====  ============  ==================================================================
    1  missing       the reading is NaN
    2  gap           part of a run of missing readings at least ``gap_hours`` long
    4  flatline      part of a run of identical readings at least ``flatline_hours`` long, or
                     at least ``flatline_min_hours`` long when the sensor repeats itself so
                     rarely that chance explains such a run less than ``flatline_alpha`` times
    8  spike         robust z-score against a centred moving median (``spike_window`` steps,
                     on the ``qc_transform`` scale, spread = the sensor's MAD) of at least
                     ``spike_z`` — unless the zone's other sensors move the same way at the
                     same step by at least half as much (then it is the city, not the sensor)
   16  out_of_range  outside the registry's ``valid_min``/``valid_max``
   32  duplicate     the time stamp repeats an earlier one on the time axis
   64  drift         the sensor's ``drift_hours`` moving median departs from its zone's other
                     sensors by ``drift_fraction`` (transformed units) for ``drift_min_hours``
  128  filled        the value was filled by :func:`workbench.perception.align`
=====  ============  ==================================================================

``drift`` and ``filled`` extend the six required meanings (the reference city's ground truth
has drift faults; honest gap filling needs a mark). Thresholds come from the registry
(``workbench/registry/variables.yml``: the ``quality`` defaults and each variable's own
keys) and may be overridden per call. Per-sensor ``<var>_completeness`` is the share of
readings that are present and carry no flag other than ``filled``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bottleneck as bn
import numpy as np
import pandas as pd
import xarray as xr

from workbench.perception import _kernels as K
from workbench.perception._runs import empty_events, runs_to_events
from workbench.perception._common import (
    append_history, data_variables, time_median, map_systems, step_of, steps, thresholds_for, transform, zone_buddies,
)

__all__ = ["FLAG_MASKS", "FLAG_MEANINGS", "BAD", "quality_flags", "flag_events", "qc_attrs", "flag_names"]

FLAG_MASKS = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.uint8)
FLAG_MEANINGS = "missing gap flatline spike out_of_range duplicate drift filled"
#: bits that make a reading unusable (everything but ``filled``)
BAD = np.uint8(K.MISSING | K.GAP | K.FLATLINE | K.SPIKE | K.OUT_OF_RANGE | K.DUPLICATE | K.DRIFT)


def qc_attrs(name: str, long_name: str | None = None) -> dict[str, Any]:
    """CF attributes of the ``<name>_qc`` variable."""
    return {
        "long_name": f"quality flags of {long_name or name}",
        "standard_name": "status_flag",
        "flag_masks": FLAG_MASKS,
        "flag_meanings": FLAG_MEANINGS,
        "units": "1",
    }


def flag_names(qc: int) -> list[str]:
    """The meanings set in one flag byte, e.g. ``flag_names(3) == ['missing', 'gap']``."""
    return [m for bit, m in zip(FLAG_MASKS, FLAG_MEANINGS.split()) if int(qc) & int(bit)]


def _runs_block(x: np.ndarray, *, gap: int, fmin: int, fmax: int, alpha: float) -> np.ndarray:
    return K.run_flags(x, gap_steps=gap, flat_min=fmin, flat_max=fmax, alpha=alpha)


def _spike_block(d: np.ndarray, *, window: int, floor: float) -> np.ndarray:
    """Robust z-score of each reading against a centred moving median of its own row."""
    q = d - K.centered_median(d, window)
    with np.errstate(all="ignore"):
        sigma = np.fmax(K.diff_sigma(d), floor)
    return q / sigma


def _drift_block(d: np.ndarray, *, window: int) -> np.ndarray:
    """The row's moving median minus its overall median."""
    smooth = K.centered_median(d, window, min_count=max(1, window // 4))
    if d.shape[-1] == 0:
        return smooth
    return smooth - bn.nanmedian(d, axis=-1)[..., None]


def _apply(func, *args: xr.DataArray, dtype=np.float64, **kwargs) -> xr.DataArray:
    return xr.apply_ufunc(
        func, *args, input_core_dims=[["time"]] * len(args), output_core_dims=[["time"]],
        dask="parallelized", output_dtypes=[dtype], kwargs=kwargs,
    )


def _stands_out(v: xr.DataArray, zone: xr.DataArray, n_min: int) -> xr.DataArray:
    """True where a sensor departs more than its zone-mates do on average (or has no mates).

    One sensor's fault shows, in the buddy differences, at full size in that sensor and at
    1/n of it in each of its n zone-mates: only the faulty sensor stands out.
    """
    mean_abs, n = zone_buddies(abs(v), zone)
    return (abs(v) > mean_abs) | (n < n_min)


def _flags_one(ds: xr.Dataset, name: str, overrides: Mapping[str, Any] | None) -> tuple[xr.DataArray, dict]:
    th = thresholds_for(name, overrides)
    x = ds[name].astype(np.float64)
    zone = ds["zone"]
    step = step_of(ds["time"])
    n_min = max(1, int(th["min_buddies"]) - 1)  # other sensors of the zone needed
    gap = steps(th["gap_hours"], step)
    fmax = steps(th.get("flatline_hours"), step)
    fmin = max(2, min(fmax, steps(th["flatline_min_hours"], step))) if fmax else 0
    bits = _apply(_runs_block, x, dtype=np.uint8, gap=gap, fmin=fmin, fmax=fmax, alpha=float(th["flatline_alpha"]))
    # work on the transformed scale, each sensor relative to its own level, bad runs masked
    y = transform(x, th["qc_transform"]).where((bits & (K.GAP | K.FLATLINE)) == 0)
    y = y - time_median(y)
    # buddy differences: the zone's common signal (rhythm, weather, events) cancels out
    buddy, n_others = zone_buddies(y, zone)
    d = xr.where(n_others >= n_min, y - buddy, y)
    spike_z = th.get("spike_z")
    if spike_z:
        # sharp against the sensor's own neighbourhood in time, and not shared by the zone
        win, floor = int(th["spike_window"]), float(th["qc_floor"])
        z_own = _apply(_spike_block, y, window=win, floor=floor)
        z_zone = _apply(_spike_block, d, window=win, floor=floor)
        spike = ((abs(z_own) >= spike_z) & (abs(z_zone) >= 0.5 * spike_z) & (np.sign(z_own) == np.sign(z_zone))
                 & _stands_out(z_zone, zone, n_min))
        bits = bits | xr.where(spike, np.uint8(K.SPIKE), np.uint8(0))
    oor = (x < th["valid_min"]) | (x > th["valid_max"])
    bits = bits | xr.where(oor, np.uint8(K.OUT_OF_RANGE), np.uint8(0))
    dup = pd.DatetimeIndex(ds["time"].to_numpy()).duplicated()  # boundary: the time coordinate is small
    if dup.any():
        bits = bits | xr.DataArray(np.where(dup, np.uint8(K.DUPLICATE), np.uint8(0)), dims="time")
    if th.get("drift_fraction"):
        usable = (bits & (K.SPIKE | K.OUT_OF_RANGE)) == 0
        dd = _apply(_drift_block, d.where(usable & (n_others >= n_min)), window=steps(th["drift_hours"], step))
        far = (abs(dd) >= th["drift_fraction"]) & _stands_out(dd, zone, n_min) & (n_others >= n_min)
        drift = _apply(K.long_runs, far, dtype=bool, min_len=steps(th["drift_min_hours"], step))
        bits = bits | xr.where(drift, np.uint8(K.DRIFT), np.uint8(0))
    bits = bits.astype(np.uint8).transpose(*x.dims)
    bits.attrs = qc_attrs(name, ds[name].attrs.get("long_name"))
    return bits, th


def quality_flags(ds: xr.Dataset | xr.DataTree, *, thresholds: Mapping[str, Any] | None = None,
                  variables: list[str] | None = None) -> xr.Dataset | xr.DataTree:
    """Flag every reading of a system (or of every system of a city); the data is untouched.

    Parameters
    ----------
    ds
        A system Dataset with dims ``(sensor, time)`` and a ``zone`` coordinate along sensor,
        or a city :class:`xarray.DataTree` (every system node is flagged).
    thresholds
        Overrides of the registry's thresholds: ``{"spike_z": 6}`` for every variable, or
        ``{"electric_load": {"flatline_hours": 2}}`` for one.
    variables
        Variables to flag (default: every ``(sensor, time)`` variable that is not a flag).

    Returns
    -------
    Dataset or DataTree
        The input plus ``<var>_qc`` (uint8, CF flag masks, see the module docstring) and
        ``<var>_completeness`` (along sensor, share of usable readings) per variable. Lazy if
        the input is.

    Examples
    --------
    >>> from workbench.synth import make_city
    >>> from workbench.perception import quality_flags
    >>> city = make_city(zones=4, sensors_per_system=8, days=7, fault_rate=2.0)
    >>> energy = quality_flags(city["energy"].to_dataset())
    >>> energy["electric_load_qc"].attrs["flag_meanings"].split()[:3]
    ['missing', 'gap', 'flatline']
    """

    def one(d: xr.Dataset) -> xr.Dataset:
        if "zone" not in d.coords:
            raise ValueError("quality_flags needs a 'zone' coordinate along sensor (the buddy checks compare zone-mates).")
        names = variables or data_variables(d)
        new = {}
        for name in names:
            qc, th = _flags_one(d, name, thresholds)
            if f"{name}_qc" in d:  # keep the marks of earlier steps (align's filled bit)
                qc = (qc | (d[f"{name}_qc"].astype(np.uint8) & np.uint8(K.FILLED))).astype(np.uint8)
                qc.attrs = qc_attrs(name, d[name].attrs.get("long_name"))
            new[f"{name}_qc"] = qc
            comp = ((qc & BAD) == 0).mean("time")
            comp.attrs = {"long_name": f"completeness of {d[name].attrs.get('long_name', name)}", "units": "1",
                          "description": "share of readings present and not flagged (filled readings count)"}
            new[f"{name}_completeness"] = comp
        shown = {k: v for k, v in (thresholds or {}).items()}
        out = d.assign(new)
        out.attrs = append_history(d.attrs, f"workbench.perception.quality_flags(variables={names}, thresholds={shown})")
        return out

    return map_systems(ds, one)


def flag_events(ds: xr.Dataset | xr.DataTree, *, kinds: tuple[str, ...] = ("gap", "flatline", "spike", "out_of_range",
                "duplicate", "drift"), merge_hours: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The flagged runs of a flagged system (or city) as a table, one row per run.

    Columns ``kind`` (the flag meaning), ``system, zone, sensor, start, end, severity`` (the
    run's length in steps) and ``variable`` — comparable with the fault ground truth.
    Runs of one kind closer than ``merge_hours`` (default: drift 6 h, others 0) are joined.
    This computes the flags (a table is the product).
    """
    merge_hours = {"drift": 6.0, **(merge_hours or {})}
    frames = []
    nodes = ([(n, ds[n].to_dataset()) for n in ds.children] if isinstance(ds, xr.DataTree) else [(ds.attrs.get("system", ""), ds)])
    for system, d in nodes:
        qcs = [v for v in d.data_vars if str(v).endswith("_qc")]
        if not qcs:
            continue
        step = step_of(d["time"])
        d = d[qcs].compute()  # boundary: the event table is the product; flags are 1 byte per reading
        for qc_name in qcs:
            qc = d[qc_name]
            for kind in kinds:
                bit = int(FLAG_MASKS[FLAG_MEANINGS.split().index(kind)])
                mask = (qc & bit) > 0
                merge = steps(merge_hours.get(kind, 0) or None, step)
                ev = runs_to_events(mask, mask.astype(np.float64), kind=kind, system=str(d.attrs.get("system", system) or system),
                                    merge=merge, extra={"variable": str(qc_name)[:-3]})
                if len(ev):
                    ev["severity"] = ((ev["end"] - ev["start"]) / step + 1).astype(float)
                frames.append(ev)
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_events(("variable",))
    return pd.concat(frames, ignore_index=True)
