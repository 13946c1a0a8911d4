"""Incidents: co-occurring anomalies across systems, fused per district into typed events.

:func:`detect_incidents` reads the whole city, rolls every variable up to a per-zone
residual (median over the zone's sensors of each sensor's departure from its own normal,
:mod:`workbench.integration._residuals`), and asks each kind's detector
(:mod:`workbench.integration._detectors`) where its signature holds: which systems move, and
in which direction. A single sensor cannot move a zone median, so a faulty sensor never
becomes a city incident; sensor anomalies that no incident explains are reported as
``sensor_fault`` incidents instead (when per-sensor anomalies are available).

Columns of the result (stable): ``kind, zone, start, end, severity, confidence, evidence,
detected_at, sensor, system``. ``start``/``end`` are inclusive timestamps; ``detected_at``
is the first step at which the (causal) detector fired, the honest detection time;
``evidence`` is a JSON list of the signals (and sensor anomalies) behind the incident.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry
from workbench.integration import _detectors as det
from workbench.integration._residuals import zone_residuals
from workbench.perception._common import zone_neighbours
from workbench.perception._intervals import shared_by_another

__all__ = ["INCIDENT_KINDS", "INCIDENT_COLUMNS", "detect_incidents", "zone_signals"]

#: incident kinds: the city's event kinds (same names as the reference city) and sensor_fault
INCIDENT_KINDS = (*registry.event_kinds(), "sensor_fault")
INCIDENT_COLUMNS = ["kind", "zone", "start", "end", "severity", "confidence", "evidence", "detected_at", "sensor", "system"]
#: the system that owns each kind's primary signal
_PRIMARY_SYSTEM = registry.event_primary()
#: systems each kind involves (for routing and evidence)
KIND_SYSTEMS = {**registry.event_systems(), "sensor_fault": ()}


def _neighbours(city: xr.DataTree, zones: list[str]) -> list[list[int]]:
    pos = {z: i for i, z in enumerate(zones)}
    adjacent = zone_neighbours(city) or {}
    return [[pos[n] for n in adjacent.get(z, []) if n in pos] for z in zones]


def zone_signals(city: xr.DataTree) -> xr.Dataset:
    """The zone × time residual signals incidents are detected from (lazy)."""
    return zone_residuals(city)


def _empty() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="object") for c in INCIDENT_COLUMNS})
    for c in ("start", "end", "detected_at"):
        df[c] = pd.Series(dtype="datetime64[ns]")
    for c in ("severity", "confidence"):
        df[c] = pd.Series(dtype="float64")
    return df


def detect_incidents(
    city: xr.DataTree,
    *,
    anomalies: pd.DataFrame | None = None,
    signals: xr.Dataset | None = None,
) -> pd.DataFrame:
    """Fuse co-occurring cross-system anomalies into typed incidents per zone.

    Parameters
    ----------
    city
        A workbench city (``xarray.DataTree``: system nodes ``sensor × time`` and ``/zones``).
    anomalies
        Optional per-sensor anomalies (``workbench.perception.detect_anomalies`` columns:
        ``system, zone, sensor, start, end, variable, score``). They are attached as evidence
        to the incident they fall in; those no incident explains become ``sensor_fault``.
    signals
        Precomputed :func:`zone_signals` (saves recomputing them).

    Returns
    -------
    pandas.DataFrame
        One row per incident, columns :data:`INCIDENT_COLUMNS`, sorted by start.

    Examples
    --------
    >>> from workbench.synth import make_city
    >>> city = make_city(zones=4, sensors_per_system=12, days=7, seed=3)
    >>> inc = detect_incidents(city)
    >>> list(inc.columns[:7])
    ['kind', 'zone', 'start', 'end', 'severity', 'confidence', 'evidence']
    """
    sig = zone_signals(city) if signals is None else signals
    # boundary: incident fusion segments runs in time; the zone signals are small (zones × steps)
    sig = sig.compute()  # boundary: zone signals are small (zone × time)
    zones = [str(z) for z in sig["zone"].to_numpy()]
    time = pd.DatetimeIndex(sig.indexes["time"])
    if len(time) < 2:
        return _empty()
    step_min = int((time[1] - time[0]) / pd.Timedelta("1min"))
    # the detectors' trailing sums need float64 (the signals are held as float32): one copy each
    arrays = {str(v): sig[v].transpose("zone", "time").to_numpy().astype(np.float64)
              for v in sig.data_vars if not str(v).startswith("n_")}
    masks = det.masks(arrays, _neighbours(city, zones), step_min)
    rows = []
    for kind, (mask, signal) in masks.items():
        d = det.DETECTORS[kind]
        win = max(0, d.window_minutes // step_min)
        for zi, zone in enumerate(zones):
            for a, b in det.runs(mask[zi], min_len=max(1, d.min_minutes // step_min), merge=d.merge_minutes // step_min):
                onset = max(0, a - win // 2)
                rows.append(_incident(kind, zone, zi, onset, a, b, time, arrays, signal, d))
    inc = pd.DataFrame(rows, columns=INCIDENT_COLUMNS) if rows else _empty()
    if anomalies is not None and len(anomalies):
        inc = _with_sensor_evidence(inc, anomalies)
    return inc.sort_values(["start", "zone", "kind"], kind="stable").reset_index(drop=True)


def _incident(kind, zone, zi, onset, a, b, time, arrays, signal, d) -> dict:
    sl = slice(onset, b + 1)
    primary = arrays.get(d.primary)
    mag = float(np.nanmedian(signal[zi, a:b + 1])) if np.isfinite(signal[zi, a:b + 1]).any() else np.nan
    evidence = []
    agree = 0
    for var, sign in ((d.primary, d.sign), *d.corroborate):
        x = arrays.get(var)
        if x is None or not np.isfinite(x[zi, sl]).any():
            continue
        r = float(np.nanmedian(x[zi, sl]))
        moved = np.sign(r) == sign and abs(r) >= (0.5 if var == "air_temperature" else 0.02)
        agree += bool(moved) and var != d.primary
        evidence.append({"variable": var, "direction": "up" if r > 0 else "down", "residual": round(r, 4),
                         "unit": "degC" if var == "air_temperature" else "1", "expected": "up" if sign > 0 else "down"})
    n_corr = max(1, len(d.corroborate))
    thr = abs(_threshold(kind))
    margin = min(1.0, abs(mag) / thr - 1.0) if thr and np.isfinite(mag) else 0.0
    confidence = float(np.clip(0.5 + 0.25 * max(0.0, margin) + 0.25 * agree / n_corr, 0.0, 1.0))
    severity = abs(mag) if kind != "heatwave" else abs(float(np.nanmedian(arrays["electric_load"][zi, a:b + 1])) if "electric_load" in arrays else mag)
    return {
        "kind": kind, "zone": zone, "start": time[onset], "end": time[b], "severity": round(float(severity), 4),
        "confidence": round(confidence, 3), "evidence": json.dumps(evidence), "detected_at": time[a],
        "sensor": "", "system": _PRIMARY_SYSTEM[kind],
    }


def _threshold(kind: str) -> float:
    return {
        "power_outage": det.T["power_load"], "network_outage": det.T["network_data"],
        "public_gathering": det.T["gathering_foot"], "traffic_incident": det.T["traffic_speed"],
        "water_leak": det.T["leak_pressure"], "heatwave": det.T["heat_contrast"],
    }[kind]


def _evidence_fields(an: pd.DataFrame) -> dict[str, list]:
    """Per anomaly, the fields an incident's evidence lists (same strings as ``str(value)``)."""
    n = len(an)
    var = an["variable"] if "variable" in an else [""] * n
    score = an["score"] if "score" in an else [np.nan] * n
    return {"sensor": [str(v) for v in an["sensor"]], "system": [str(v) for v in an["system"]],
            "variable": [str(v) for v in var], "start": [str(v) for v in an["start"]],
            "end": [str(v) for v in an["end"]], "score": [float(v) for v in score]}


def _alone(an: pd.DataFrame) -> pd.DataFrame:
    """Anomalies no other sensor of the same zone and system shares in time (single-sensor)."""
    if an.empty:
        return an
    keep = np.ones(len(an), dtype=bool)
    for _, grp in an.groupby(["zone", "system"], sort=False):
        if grp["sensor"].nunique() < 2:
            continue
        s = grp["start"].to_numpy("datetime64[ns]").astype(np.int64)
        e = grp["end"].to_numpy("datetime64[ns]").astype(np.int64)
        who = pd.factorize(grp["sensor"].astype(str))[0]
        keep[an.index.get_indexer(grp.index)] = ~shared_by_another(s, e, who)
    return an[keep]


def _with_sensor_evidence(inc: pd.DataFrame, anomalies: pd.DataFrame) -> pd.DataFrame:
    """Attach sensor anomalies to the incident they fall in; the rest become sensor_fault.

    The anomaly columns are turned into numpy arrays (and the evidence fields into strings)
    once, and each zone's rows are found once: per incident only that zone's rows are tested.
    """
    an = anomalies.reset_index(drop=True).copy()
    an["start"] = pd.to_datetime(an["start"])
    an["end"] = pd.to_datetime(an["end"])
    explained = np.zeros(len(an), dtype=bool)
    inc = inc.copy()
    zone = an["zone"].astype(str).to_numpy(dtype=object)
    start, end = an["start"].to_numpy(), an["end"].to_numpy()
    rows_of = {str(z): np.flatnonzero(zone == z) for z in pd.unique(zone)}
    in_kind: dict[str, np.ndarray] = {}
    cited: dict[int, np.ndarray] = {}  # incident position -> the anomalies its evidence lists
    for pos, (kind, z, s, e) in enumerate(zip(inc["kind"], inc["zone"], inc["start"], inc["end"])):
        idx = rows_of.get(str(z))
        if idx is None or not len(idx):
            continue
        if kind not in in_kind:
            in_kind[kind] = an["system"].isin(KIND_SYSTEMS.get(kind, ())).to_numpy()
        idx = idx[(start[idx] <= np.datetime64(pd.Timestamp(e))) & (end[idx] >= np.datetime64(pd.Timestamp(s))) & in_kind[kind][idx]]
        if len(idx):
            explained[idx] = True
            cited[pos] = idx[:50]
    if cited:  # the evidence fields as strings, only for the anomalies cited
        need = np.unique(np.concatenate(list(cited.values())))
        fields = _evidence_fields(an.iloc[need])
        at = {int(j): k for k, j in enumerate(need)}
        evidence = inc["evidence"].tolist()
        for pos, idx in cited.items():
            ev = json.loads(evidence[pos])
            ev.extend({name: col[at[int(j)]] for name, col in fields.items()} for j in idx)
            evidence[pos] = json.dumps(ev)
        inc["evidence"] = evidence
    rest = _alone(an[~explained])
    faults = []
    for (sensor, system, zone), grp in rest.groupby(["sensor", "system", "zone"], sort=True):
        grp = grp.sort_values("start")
        cur = None
        for a in grp.itertuples():
            if cur is not None and a.start <= cur["end"] + pd.Timedelta("1h"):
                cur["end"] = max(cur["end"], a.end)
                cur["_n"] += 1
                cur["_score"] = max(cur["_score"], float(getattr(a, "score", 0.0) or 0.0))
                continue
            if cur is not None:
                faults.append(cur)
            cur = {"kind": "sensor_fault", "zone": str(zone), "start": a.start, "end": a.end, "sensor": str(sensor),
                   "system": str(system), "detected_at": a.start, "_n": 1, "_score": float(getattr(a, "score", 0.0) or 0.0),
                   "_var": str(getattr(a, "variable", ""))}
        if cur is not None:
            faults.append(cur)
    for f in faults:
        f["severity"] = round(f.pop("_score"), 4)
        f["confidence"] = 0.5
        f["evidence"] = json.dumps([{"sensor": f["sensor"], "variable": f.pop("_var"), "anomalies": f.pop("_n"),
                                     "note": "no other sensor or system in the zone moved"}])
    if faults:
        inc = pd.concat([inc, pd.DataFrame(faults)[INCIDENT_COLUMNS]], ignore_index=True)
    return inc
