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
    8  spike         the reading against the sensor's own level relative to its zone-mates:
                     robust z of the buddy difference (log ratio to the mean of the zone's
                     other sensors, which share every driver) against its centred moving
                     median (``spike_window`` steps; noise from second differences) of at least
                     ``spike_z``, the same sign and at least ``spike_own_z`` on the sensor's own
                     series, and standing out more than its zone-mates (a zone-wide jump is the
                     city, not the sensor)
   16  out_of_range  outside the registry's ``valid_min``/``valid_max``
   32  duplicate     the time stamp repeats an earlier one on the time axis
   64  drift         the sensor's ``drift_hours`` moving median departs from its zone's other
                     sensors by ``drift_fraction`` (transformed units) for ``drift_min_hours``
  128  filled        the value was filled by :func:`workbench.perception.align`
=====  ============  ==================================================================

Sensors in a zone with fewer than ``min_buddies`` sensors of their system get the spike and
drift tests against the other zones instead (:mod:`workbench.perception._lone`: a spike is a
short rise with the level before = after, a drift a growing run; registry ``lone_*`` keys).

``drift`` and ``filled`` extend the six required meanings (the reference city's ground truth
has drift faults; honest gap filling needs a mark). Thresholds come from the registry
(``workbench/registry/variables.yml``: the ``quality`` defaults and each variable's own
keys) and may be overridden per call. All tests of a variable run in one block kernel
(:mod:`workbench.perception._blocks`) over zone-complete chunks (:mod:`._zoned`). Per-sensor ``<var>_completeness`` is the share of
readings that are present and carry no flag other than ``filled``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.perception import _kernels as K
from workbench.perception._lone import lone_reference, lone_zones
from workbench.perception._qc import flags_block
from workbench.perception._common import (append_history, data_variables, map_systems, step_of, steps, thresholds_for,
                                          zone_neighbours)
from workbench.perception._runs import empty_events, runs_to_events
from workbench.perception._zoned import zone_codes, zone_map

__all__ = ["FLAG_MASKS", "FLAG_MEANINGS", "BAD", "quality_flags", "flag_events", "qc_attrs", "flag_names", "flag_params", "completeness"]

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


def _lone_params(ds: xr.Dataset, name: str, th: Mapping[str, Any], neighbours: Mapping[str, list[str]] | None) -> dict[str, Any]:
    """``lone_codes``/``lone_ref`` of the zones with fewer than ``min_buddies`` sensors (empty when none)."""
    if "zone" not in ds.coords or not (th.get("lone_spike_steps") or th.get("lone_drift_ramp")):
        return {}
    codes = zone_codes(ds)
    lone = lone_zones(codes, int(th["min_buddies"]))
    if not len(lone) or len(np.unique(codes)) < 2:
        return {}
    zones = np.unique(np.asarray(ds["zone"].to_numpy()).astype(str))  # boundary: zone labels (zone_codes' order)
    nb = neighbours if th.get("lone_reference", "neighbours") == "neighbours" else None
    ref = lone_reference(ds[name], codes, zones, lone, th["qc_transform"], nb)
    return dict(lone_codes=lone, lone_ref=ref, lone_spike_steps=int(th.get("lone_spike_steps") or 0),
                lone_drift_ramp=float(th.get("lone_drift_ramp") or 0.0), lone_spike_up=th.get("lone_spike_direction") == "up",
                lone_spike_gain=float(th.get("lone_spike_gain") or 1.0))


def flag_params(ds: xr.Dataset, name: str, overrides: Mapping[str, Any] | None = None,
                neighbours: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """The keyword arguments of :func:`_qc.flags_block` for one variable (thresholds in steps).

    Zones with fewer than ``min_buddies`` sensors bring their neighbour reference (one pass over
    the variable, :func:`workbench.perception._lone.lone_reference`); ``neighbours`` maps a zone
    to its neighbouring zones (default: every other zone)."""
    th = thresholds_for(name, overrides)
    step = step_of(ds["time"])
    fmax = steps(th.get("flatline_hours"), step)
    spike_z = th.get("spike_z") or None
    dup = pd.DatetimeIndex(ds["time"].to_numpy()).duplicated()  # boundary: the time coordinate is small
    params = dict(
        gap=steps(th["gap_hours"], step), fmin=max(2, min(fmax, steps(th["flatline_min_hours"], step))) if fmax else 0,
        fmax=fmax, alpha=float(th["flatline_alpha"]), transform=th["qc_transform"],
        n_min=max(1, int(th["min_buddies"]) - 1),  # other sensors of the zone needed
        spike_z=spike_z, spike_own_z=float(th.get("spike_own_z") or 0.0), window=int(th["spike_window"]),
        floor=float(th["qc_floor"]), drift_fraction=th.get("drift_fraction") or None,
        drift_window=steps(th["drift_hours"], step), drift_min=steps(th["drift_min_hours"], step),
        drift_spread=float(th.get("drift_spread") or 0.0),
        valid_min=float(th["valid_min"]), valid_max=float(th["valid_max"]), dup=dup if dup.any() else None,
    )
    params.update(_lone_params(ds, name, th, neighbours))
    return params


def completeness(qc: xr.DataArray, long_name: str) -> xr.DataArray:
    """Share of readings with no ``BAD`` bit, per sensor (lazy)."""
    comp = ((qc & BAD) == 0).mean("time")
    comp.attrs = {"long_name": f"completeness of {long_name}", "units": "1",
                  "description": "share of readings present and not flagged (filled readings count)"}
    return comp


def _flags_one(ds: xr.Dataset, name: str, codes: np.ndarray, overrides: Mapping[str, Any] | None,
               neighbours: Mapping[str, list[str]] | None = None) -> xr.DataArray:
    """Every test of one variable in one block kernel (:func:`_qc.flags_block`) per zone-complete chunk."""
    (bits,) = zone_map(flags_block, [ds[name]], codes, dtypes=[np.uint8], kwargs=flag_params(ds, name, overrides, neighbours))
    bits.attrs = qc_attrs(name, ds[name].attrs.get("long_name"))
    return bits


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

    neighbours = zone_neighbours(ds)

    def one(d: xr.Dataset) -> xr.Dataset:
        if "zone" not in d.coords:
            raise ValueError("quality_flags needs a 'zone' coordinate along sensor (the buddy checks compare zone-mates).")
        names = variables or data_variables(d)
        codes = zone_codes(d)
        new = {}
        for name in names:
            qc = _flags_one(d, name, codes, thresholds, neighbours)
            if f"{name}_qc" in d:  # keep the marks of earlier steps (align's filled bit)
                qc = (qc | (d[f"{name}_qc"].astype(np.uint8) & np.uint8(K.FILLED))).astype(np.uint8)
                qc.attrs = qc_attrs(name, d[name].attrs.get("long_name"))
            new[f"{name}_qc"] = qc
            new[f"{name}_completeness"] = completeness(qc, d[name].attrs.get("long_name", name))
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
