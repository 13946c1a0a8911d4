"""Anomaly scores and detection, per sensor: robust, seasonal, faults masked out.

For each variable, on the ``qc_transform`` scale of the registry (log for multiplicative noise):

1. readings flagged bad by :func:`~workbench.perception.quality_flags` are masked (faults are
   not anomalies: a stuck or drifting sensor is a maintenance job, not a city event);
2. each sensor's **profile** is the median per time-of-day slot and day type (a numba slot
   median, equal to flox's ``nanmedian`` groupby; ``profile="week"`` uses the 7 × 24 h
   time-of-week instead, ``"day"`` one daily profile);
3. the **residual** from the profile is scaled by the sensor's robust spread (1.4826 × MAD):
   ``z``;
4. the **score** is a multi-scale scan statistic (numba): for each step, the strongest
   ``sum(z) / sqrt(n)`` over windows of 1, 4, 16 and 64 steps containing it — one threshold
   serves a 15-minute outage and a two-day leak alike. With ``anomaly_pool: zone`` (the
   registry default) the scan runs on the **zone's mean z** (each sensor's z clipped at ±5
   first) and every sensor of the zone carries it: city events are zone-wide, so the
   sensors' own noise averages out while one odd sensor cannot make its zone anomalous;
5. counts (``anomaly_model: poisson``: service requests) are scanned instead as the zone's
   count against its expectation — Kulldorff's signed root log-likelihood ratio over windows
   of 1-128 steps — not as a robust z (a median profile of sparse counts is mostly zero);
6. ``anomaly_threshold`` (registry, per variable) rescales the score so that the detector's
   one threshold means that variable's own bar (the score is ``threshold / anomaly_threshold``
   × the statistic);
7. two comparisons with the rest of the city (each a lazy reduction over every chunk):
   ``anomaly_city`` scans the zone's mean z minus the city's median zone (rain and shared
   day-type swings cancel, an event in a few zones does not move the median);
   ``anomaly_contrast_hours`` adds a slow (a day) contrast of the zone against the city's
   least departing zone (:mod:`~workbench.perception._contrast`: events that cover part of
   the city for days, like heatwaves, against fronts that move every zone);
   ``anomaly_absolute_effect`` scores that slow residual itself, without recalibration (a day
   6 °C over the month's normal is an anomaly even when every zone is hit);
8. **corroboration** across systems (``anomaly_corroborated_by``, on a city DataTree): runs of
   a variable at a lower bar (``anomaly_corroborated_threshold``) are kept where a detection
   of a named variable in the same zone, in the named direction, overlaps them
   (:func:`corroborate`: service requests during a drop of load, network traffic or water
   pressure; NO2 during a traffic drop; load and water flow during a temperature rise).

:func:`detect_anomalies` turns runs of ``|score| ≥ threshold`` into event rows, where the
departure from the profile (``<var>_effect``, a 1-hour median of the residual) is also at
least the variable's ``anomaly_min_effect`` (registry): a departure must be both significant
and material. Rain lowers footfall by a third for hours — significant, yet weather, not an
event; the materiality floors come from the event magnitudes of REFERENCE_CITY.md (typical
of real networks) and were checked on seeds 100-109. ``anomaly_min_effect: null`` leaves a
variable out of detection (rainfall: intermittent, no profile to depart from).
``anomaly_direction: up`` (NO2, PM2.5) keeps only rises in the score: rain washes pollutants
down, which is weather; the events that touch air quality raise it.

Flags (when absent), profile, z, scan and effect of a variable run in one block kernel
(:func:`workbench.perception._blocks.scores_block`) per zone-complete chunk; the profile is
:func:`~workbench.perception._blocks.slot_median` on the block; ``z``, ``score``, ``effect``
are float32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.perception._blocks import city_scan_block, scores_block
from workbench.perception._contrast import contrast
from workbench.perception._cityload import loading_scan_block
from workbench.perception._confirm import confirm
from workbench.perception._nearby import nearby_hits, weak_mask
from workbench.perception._common import (append_history, data_variables, map_systems, median_of_rows, step_of, steps,
                                          thresholds_for, zone_neighbours)
from workbench.perception._intervals import departing, overlaps
from workbench.perception._runs import empty_events, runs_to_events
from workbench.perception._zoned import zone_codes, zone_map
from workbench.perception._zoned import zone_order as _zone_order
from workbench.perception.flags import BAD, completeness, flag_params, qc_attrs

__all__ = ["anomaly_scores", "detect_anomalies", "profile_key", "corroborate", "corroborated_rows", "corroborated_bar",
           "DEFAULT_THRESHOLD", "SCAN_HOURS"]

#: default detection threshold on the scan score (tuned on seeds 100-109; was 7 before zone pooling)
DEFAULT_THRESHOLD = 5.0
#: window lengths of the scan statistic, in hours
SCAN_HOURS = (0.25, 1.0, 4.0, 16.0)


def profile_key(time: xr.DataArray, profile: str = "daytype") -> xr.DataArray:
    """The profile slot of each time step: time of day, by day type (weekday/Saturday/Sunday),
    by day of week (``"week"``), or time of day alone (``"day"``)."""
    t = pd.DatetimeIndex(time.to_numpy())  # boundary: the time coordinate is small and in memory
    step = step_of(time)
    slot = ((t - t.normalize()) // step).to_numpy()
    per_day = int(pd.Timedelta("1D") / step)
    if profile == "day":
        day = np.zeros(len(t), dtype=np.int64)
    elif profile == "week":
        day = t.day_of_week.to_numpy()
    elif profile == "daytype":
        day = np.minimum(np.maximum(t.day_of_week.to_numpy() - 4, 0), 2)
    else:
        raise ValueError(f"profile must be 'daytype', 'week' or 'day', not {profile!r}.")
    return xr.DataArray((day * per_day + slot).astype(np.int64), dims="time", coords={"time": time}, name="slot")


def _scores_one(ds: xr.Dataset, name: str, codes: np.ndarray, key: xr.DataArray, scales: tuple[int, ...],
                effect_window: int, overrides: Mapping[str, Any] | None) -> dict[str, xr.DataArray]:
    """One block kernel per zone-complete chunk: flags (when absent), profile, z, scan, effect."""
    th = thresholds_for(name, overrides)
    if th["anomaly_scan_hours"]:  # a variable's own scan windows (registry), in hours
        step = step_of(ds["time"])
        scales = tuple(sorted({steps(float(h), step) for h in th["anomaly_scan_hours"]}))
    if th["anomaly_profile"]:  # a variable's own profile (registry): weather has no weekly rhythm
        key = profile_key(ds["time"], str(th["anomaly_profile"]))
    slot = np.asarray(key.to_numpy())  # boundary: the slot of each time step, small
    kw = dict(slot=slot, n_slots=int(slot.max()) + 1 if slot.size else 1, transform=th["qc_transform"],
              floor=float(th["qc_floor"]), scales=scales, effect_window=effect_window, bad=int(BAD),
              direction=str(th["anomaly_direction"]), model=str(th["anomaly_model"]), pool=str(th["anomaly_pool"]),
              steps_per_hour=max(1, effect_window), gain=DEFAULT_THRESHOLD / float(th["anomaly_threshold"] or DEFAULT_THRESHOLD))
    if th["anomaly_effect_hours"]:  # a variable's own effect window (registry): events shorter than an hour
        kw["effect_window"] = steps(float(th["anomaly_effect_hours"]), step_of(ds["time"]))
    if th["anomaly_pool_clip"]:  # a variable's own clip of one sensor's |z| before the zone mean (registry)
        kw["clip"] = float(th["anomaly_pool_clip"])
    have_qc = f"{name}_qc" in ds
    if have_qc:
        arrays = [ds[name], ds[f"{name}_qc"]]
        dtypes = [np.float32] * 3
    else:
        arrays, dtypes = [ds[name]], [np.uint8] + [np.float32] * 3
        kw["flag_params"] = flag_params(ds, name, overrides)
    window = 0
    if th["anomaly_contrast_hours"] and kw["pool"] != "sensor" and kw["model"] != "poisson":
        window = steps(float(th["anomaly_contrast_hours"]), step_of(ds["time"]))
        kw["contrast_window"] = window
        dtypes = [*dtypes, np.float32]
    city = bool(th["anomaly_city"]) and kw["pool"] == "zone" and kw["model"] != "poisson"
    if city:
        kw["city"] = True
        dtypes = [*dtypes, np.float32]
    res = zone_map(scores_block, arrays, codes, dtypes=dtypes, kwargs=kw)
    out = {}
    if not have_qc:
        qc = res.pop(0)
        qc.attrs = qc_attrs(name, ds[name].attrs.get("long_name"))
        out[f"{name}_qc"] = qc
    z, score, effect = res[:3]
    if city:  # the zone against the city's median zone, at every scan scale: one reduction over every chunk
        rep = res[-1]
        scan = loading_scan_block if th["anomaly_city"] == "loading" else city_scan_block  # each zone's own loading
        (score,) = zone_map(scan, [rep, z, median_of_rows(rep, "sensor").broadcast_like(rep)], codes,
                            dtypes=[np.float32], kwargs=dict(scales=scales, gain=kw["gain"], direction=kw["direction"]))
    if window:  # a zone against the city's least departing zone: one reduction over every chunk
        slow = res[3]
        score, effect = xr.apply_ufunc(
            contrast, score, effect, slow, slow.min("sensor", skipna=True),
            input_core_dims=[["time"]] * 4, output_core_dims=[["time"]] * 2, dask="parallelized",
            output_dtypes=[np.float32] * 2,
            kwargs=dict(floor=kw["floor"], gain=kw["gain"], direction=kw["direction"],
                        absolute=float(th["anomaly_absolute_effect"] or 0.0), bar=DEFAULT_THRESHOLD))
        score, effect = score.transpose("sensor", "time"), effect.transpose("sensor", "time")
    long_name = ds[name].attrs.get("long_name", name)
    effect.attrs = {"long_name": f"departure of {long_name} from its profile ({th['anomaly_effect_hours'] or 1} h median, {th['qc_transform']} scale)",
                    "units": "1" if th["qc_transform"] != "linear" else ds[name].attrs.get("units", "1")}
    z.attrs = {"long_name": f"robust z of {long_name} from its profile", "units": "1"}
    score.attrs = {"long_name": f"anomaly score of {long_name}", "units": "1",
                   "description": f"signed multi-scale scan of z over windows of {list(scales)} steps"}
    out.update({f"{name}_z": z, f"{name}_score": score, f"{name}_effect": effect})
    return out


def anomaly_scores(ds: xr.Dataset | xr.DataTree, *, profile: str = "daytype", variables: Sequence[str] | None = None,
                   thresholds: Mapping[str, Any] | None = None, zone_order: bool = False) -> xr.Dataset | xr.DataTree:
    """Robust seasonal anomaly scores per sensor and step (lazy).

    Parameters
    ----------
    ds
        A system Dataset (``sensor × time``, ``zone`` along sensor) or a city DataTree. When the
        ``<var>_qc`` flags are absent they are computed with :func:`quality_flags`.
    profile
        ``"daytype"`` (weekday / Saturday / Sunday × time of day, the default: a month holds
        20 weekdays), ``"week"`` (time of week) or ``"day"``.
    variables, thresholds
        As in :func:`quality_flags` (transform and floor come from the registry).
    zone_order
        Return the sensors in zone order, chunked at zone boundaries, when the sensor axis is
        split: one gather up front instead of one per output and back (for callers that read
        per-chunk tables and need no particular order). The values are the same.

    Returns
    -------
    Dataset or DataTree
        The input plus ``<var>_z`` (robust z from the profile) and ``<var>_score`` (signed scan
        score) per variable.

    Examples
    --------
    >>> from workbench.synth import make_city
    >>> from workbench.perception import anomaly_scores
    >>> city = make_city(zones=4, sensors_per_system=8, days=14)
    >>> s = anomaly_scores(city["water"].to_dataset())
    >>> s["water_flow_score"].dims
    ('sensor', 'time')
    """

    def one(d: xr.Dataset) -> xr.Dataset:
        names = list(variables or data_variables(d))
        codes = zone_codes(d)
        if zone_order:
            d, codes = _zone_order(d, codes)
        key = profile_key(d["time"], profile)
        step = step_of(d["time"])
        scales = tuple(sorted({steps(h, step) for h in SCAN_HOURS}))
        new = {}
        for name in names:
            new.update(_scores_one(d, name, codes, key, scales, steps(1.0, step), thresholds))
        for name in names:  # flags computed in the same pass carry their completeness too
            if f"{name}_qc" in new:
                new[f"{name}_completeness"] = completeness(new[f"{name}_qc"], d[name].attrs.get("long_name", name))
        out = d.assign(new)
        out.attrs = append_history(d.attrs, f"workbench.perception.anomaly_scores(profile={profile!r}, variables={names})")
        return out

    return map_systems(ds, one)


def detect_anomalies(ds: xr.Dataset | xr.DataTree, *, threshold: float = DEFAULT_THRESHOLD, merge_hours: float = 1.0,
                     profile: str = "daytype", thresholds: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Anomalous periods per sensor as an event table.

    Runs of ``|score| ≥ threshold`` (closer than ``merge_hours`` joined) of every variable of
    every system. Scores are computed when absent.

    Returns
    -------
    pandas.DataFrame
        ``kind`` (``"anomaly"``), ``system, zone, sensor, start, end`` (inclusive),
        ``severity`` (the largest ``|z|`` in the run), ``variable``, ``score`` (the signed
        scan score of largest magnitude: negative for a drop).

    Examples
    --------
    >>> from workbench.synth import make_city
    >>> from workbench.perception import detect_anomalies
    >>> city = make_city(zones=4, sensors_per_system=8, days=14)
    >>> list(detect_anomalies(city["energy"].to_dataset()).columns)[:7]
    ['kind', 'system', 'zone', 'sensor', 'start', 'end', 'severity']
    """
    nodes = [(n, ds[n].to_dataset()) for n in ds.children] if isinstance(ds, xr.DataTree) else [(ds.attrs.get("system", ""), ds)]
    frames, weak = [], []
    for system, d in nodes:
        if not ("sensor" in d.dims and "time" in d.dims):
            continue
        names = data_variables(d)
        if not names:
            continue
        if any(f"{n}_score" not in d for n in names):
            d = anomaly_scores(d, profile=profile, variables=names, thresholds=thresholds)
        merge = steps(merge_hours or None, step_of(d["time"]))
        system = str(d.attrs.get("system", system) or system)
        for name in names:
            th = thresholds_for(name, thresholds)
            min_effect = th.get("anomaly_min_effect")
            if min_effect is None:
                continue
            bar = corroborated_bar(th, threshold)
            v = d[[f"{name}_score", f"{name}_effect", f"{name}_z"]]
            if bar is not None:
                v = v.compute()  # boundary: one variable's score, effect and z, read once for both bars
            score, effect = v[f"{name}_score"], v[f"{name}_effect"]
            kw = dict(kind="anomaly", system=system, merge=merge, extra={"variable": name}, signed_score=score)
            frames.append(runs_to_events((abs(score) >= threshold) & (abs(effect) >= min_effect), v[f"{name}_z"], **kw))
            if bar is not None:
                weak.append(runs_to_events(weak_mask(score, effect, th, bar), v[f"{name}_z"], **kw))
    frames = [f for f in frames if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else empty_events(("variable", "score"))
    weak = [f for f in weak if len(f)]
    if weak:
        out = corroborate(out, pd.concat(weak, ignore_index=True), thresholds=thresholds,
                          tolerance=pd.Timedelta(hours=merge_hours or 0), neighbours=zone_neighbours(ds))
    return confirm(out, thresholds=thresholds, tolerance=pd.Timedelta(hours=merge_hours or 0))  # last: after corroboration


def corroborated_bar(th: Mapping[str, Any], threshold: float = DEFAULT_THRESHOLD) -> float | None:
    """The score a variable's run needs when another system corroborates it (``None``: no such bar).

    ``anomaly_corroborated_threshold`` is in the variable's own statistic units, like
    ``anomaly_threshold``; the score carries the gain ``DEFAULT_THRESHOLD / anomaly_threshold``
    and the detector's ``threshold`` scales both bars alike.
    """
    if not (th.get("anomaly_corroborated_by") or th.get("anomaly_corroborated_nearby")) or th.get("anomaly_corroborated_threshold") is None:
        return None
    own = float(th.get("anomaly_threshold") or DEFAULT_THRESHOLD)
    return float(threshold) * float(th["anomaly_corroborated_threshold"]) / own


def corroborate(detected: pd.DataFrame, weak: pd.DataFrame, *, thresholds: Mapping[str, Any] | None = None,
                tolerance: str | pd.Timedelta = "1h", neighbours: Mapping[str, list[str]] | None = None) -> pd.DataFrame:
    """``detected`` plus the runs of ``weak`` that another system's detection corroborates.

    ``weak`` holds runs of a variable at its lower ``anomaly_corroborated_threshold`` bar. One
    is kept when a row of ``detected`` in the **same zone** — of a variable named in the weak
    variable's ``anomaly_corroborated_by`` (registry: ``{variable: up|down}``), departing in
    that direction (the sign of its ``score``) — overlaps it within ``tolerance``, and no
    detected run of the same sensor and variable overlaps it already. A targeted test: the
    lower bar pays for a handful of windows that coincide with a confirmed infrastructure
    anomaly, not for every window of the month (complaints rise when the power or the
    network fails, or a main leaks). Kept rows follow ``detected`` in ``weak``'s order.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp("2026-07-06 10:00")
    >>> row = dict(kind="anomaly", zone="Z01", start=t, end=t + pd.Timedelta("1h"), severity=9.0)
    >>> det = pd.DataFrame([dict(row, system="energy", sensor="e1", variable="electric_load", score=-9.0)])
    >>> weak = pd.DataFrame([dict(row, system="services", sensor="s1", variable="service_requests", score=3.0)])
    >>> len(corroborate(det, weak)), len(corroborate(det.assign(score=9.0), weak))
    (2, 1)
    """
    keep = corroborated_rows(detected, weak, thresholds=thresholds, tolerance=tolerance, neighbours=neighbours)
    if not keep.any():
        return detected
    return pd.concat([detected, weak[keep]], ignore_index=True)


def corroborated_rows(detected: pd.DataFrame, weak: pd.DataFrame, *, thresholds: Mapping[str, Any] | None = None,
                      tolerance: str | pd.Timedelta = "1h", neighbours: Mapping[str, list[str]] | None = None) -> np.ndarray:
    """Which rows of ``weak`` :func:`corroborate` keeps (boolean, one per row). Each row's
    answer depends only on that row and ``detected``, so ``weak`` may be checked in pieces.
    With ``neighbours`` (zone -> adjacent zones), ``anomaly_corroborated_nearby`` sources in an
    adjacent zone count too (:mod:`~workbench.perception._nearby`)."""
    tol = np.int64(pd.Timedelta(tolerance).value)
    keep = np.zeros(len(weak), dtype=bool)
    for name in pd.unique(weak["variable"]):
        ok = departing(detected, thresholds_for(str(name), thresholds).get("anomaly_corroborated_by") or {})
        iw = np.flatnonzero((weak["variable"] == name).to_numpy())
        w = weak.iloc[iw]
        hit = overlaps(w["zone"], w["start"], w["end"], detected.loc[ok, "zone"], detected.loc[ok, "start"],
                        detected.loc[ok, "end"], tol)  # a source detection of the zone within the tolerance
        near = thresholds_for(str(name), thresholds).get("anomaly_corroborated_nearby")
        if near and neighbours:  # or of an adjacent zone (network outages: handover to the neighbours' cells)
            hit |= nearby_hits(w, detected, near, neighbours, tol)
        own = (detected["variable"] == name).to_numpy()
        covered = overlaps(w["sensor"], w["start"], w["end"], detected.loc[own, "sensor"], detected.loc[own, "start"],
                            detected.loc[own, "end"], np.int64(0))  # a detected run of the same sensor already
        keep[iw[hit & ~covered]] = True
    return keep
