"""Per-kind incident detectors over zone residuals (numpy, zones × steps).

Each detector turns the zone residual signals of :mod:`workbench.integration._residuals`
into a boolean "this kind is happening here now" mask and a magnitude. The signatures are
the ones ``REFERENCE_CITY.md`` describes for real networks; which systems must move and in
which direction is what tells the kinds apart:

============================  =============================================================
kind                          signature (zone residuals)
============================  =============================================================
power_outage                  electric load collapses (≤ −50 %)
network_outage                mobile data and devices collapse (≤ −60 %), load does not
public_gathering              footfall up (≥ +50 %), and mobile data up with it
traffic_incident              speed down against the city (≤ −20 %), more than any
                              neighbour's (queues spill over at half strength)
water_leak                    pressure down ≥ 1.2 % over 4 h (trailing), flow not down
heatwave                      temperature ≥ 2.5 °C over the coolest districts for a day, or
                              every district hot (≥ 3.5 °C) with load and water up with it
============================  =============================================================

Thresholds were tuned on the reference city's seeds 100–109 only (``docs/integration.md``).
All windows are trailing (causal): a detection at step *t* uses data up to *t* only, so the
first flagged step is an honest detection time.
"""

from __future__ import annotations

from dataclasses import dataclass

import warnings

import numpy as np

__all__ = ["DETECTORS", "Detector", "runs", "trailing_mean"]


@dataclass(frozen=True)
class Detector:
    """How one incident kind is detected and segmented."""

    kind: str
    primary: str  # variable whose residual is the severity
    sign: int  # direction of the primary signal
    corroborate: tuple[tuple[str, int], ...]  # (variable, sign) that should move with it
    min_minutes: int  # shortest run kept
    merge_minutes: int  # runs closer than this merge
    window_minutes: int  # trailing window of the detection signal (0: per step)


DETECTORS = {
    "power_outage": Detector("power_outage", "electric_load", -1, (("data_traffic", -1), ("connected_devices", -1)), 15, 30, 0),
    "network_outage": Detector("network_outage", "data_traffic", -1, (("connected_devices", -1),), 15, 30, 0),
    "public_gathering": Detector("public_gathering", "footfall", +1, (("data_traffic", +1), ("connected_devices", +1)), 30, 60, 0),
    "traffic_incident": Detector("traffic_incident", "traffic_speed", -1, (("traffic_flow", -1), ("no2", +1)), 30, 30, 0),
    "water_leak": Detector("water_leak", "water_pressure", -1, (("water_flow", +1),), 120, 180, 240),
    "heatwave": Detector("heatwave", "air_temperature", +1, (("electric_load", +1), ("water_flow", +1)), 18 * 60, 12 * 60, 720),
}

#: thresholds (tuned on seeds 100–109)
T = {
    "power_load": -0.5,
    "network_data": -0.6,
    "network_load_ok": -0.3,
    "gathering_foot": 0.5,
    "traffic_speed": -0.2,
    "traffic_neighbour_ratio": 1.6,
    "leak_pressure": -0.012,
    "leak_noise_k": 5.0,  # × the zone's pressure spread (tuned on seeds 100–109, noise 1.0 and 1.5)
    "heat_contrast": 2.5,
    "heat_abs": 3.5,
    "heat_load": 0.08,
    "heat_water": 0.05,
    "heat_city_score": 0.8,
    "heat_city_hours": 16,
    "heat_zone_score": 0.6,
}


def _nanmin0(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x).any(axis=0, keepdims=True)
    return np.where(ok, np.min(np.where(np.isfinite(x), x, np.inf), axis=0, keepdims=True), np.nan)


def _heat_score(temp, load, water) -> np.ndarray:
    """How far temperature, load and water all are above normal, as a fraction of threshold."""
    return np.minimum(np.minimum(temp / T["heat_abs"], load / T["heat_load"]), water / T["heat_water"])


def _citywide_heat(temp, load, water, step_minutes: int) -> np.ndarray:
    """Zones hot together with the whole city: the heatwave no cooler district reveals.

    The city median of the heat score must hold for ``heat_city_hours`` (weather fronts,
    which move the whole city too, rarely keep temperature, load and water up that long);
    then every zone whose own score is high during that spell is flagged.
    """
    with np.errstate(invalid="ignore"):
        city = np.nanmedian(_heat_score(temp, load, water), axis=0) if np.isfinite(temp).any() else np.full(temp.shape[1], np.nan)
    hold = max(1, T["heat_city_hours"] * 60 // step_minutes)
    spell = np.zeros(temp.shape[1], dtype=bool)
    for a, b in runs(city >= T["heat_city_score"], min_len=hold, merge=0):
        spell[a:b + 1] = True
    with np.errstate(invalid="ignore"):
        return spell[None, :] & (_heat_score(temp, load, water) >= T["heat_zone_score"])


def trailing_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last ``n`` steps (NaN-aware; at least half present), zones × steps."""
    if n <= 1:
        return x
    v = np.where(np.isfinite(x), x, 0.0)
    c = np.isfinite(x).astype(float)
    cv = np.cumsum(v, axis=1)
    cc = np.cumsum(c, axis=1)
    cv[:, n:] = cv[:, n:] - cv[:, :-n].copy()
    cc[:, n:] = cc[:, n:] - cc[:, :-n].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cv / cc
    out[cc < max(1, n // 2)] = np.nan
    return out


def runs(mask: np.ndarray, *, min_len: int, merge: int) -> list[tuple[int, int]]:
    """(first, last) indices of True runs of a 1-D mask, gaps ≤ ``merge`` closed."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    out = []
    a = b = int(idx[0])
    for i in idx[1:]:
        i = int(i)
        if i - b - 1 <= merge:
            b = i
        else:
            out.append((a, b))
            a = b = i
    out.append((a, b))
    return [(a, b) for a, b in out if b - a + 1 >= min_len]


def leak_threshold(pres: np.ndarray) -> np.ndarray:
    """Per-zone pressure-drop threshold (zones × 1): the fixed ``leak_pressure`` or, in a
    zone whose pressure signal is noisier, ``leak_noise_k`` × its robust spread (1.4826 ×
    MAD over the record of the trailing-mean pressure residual) — whichever is stricter.
    Noise grows the spread; a leak lasts hours, too short to move a month's MAD."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmedian(pres, axis=1, keepdims=True)
        spread = 1.4826 * np.nanmedian(np.abs(pres - centre), axis=1, keepdims=True)
    spread = np.where(np.isfinite(spread), spread, 0.0)
    return np.minimum(T["leak_pressure"], -T["leak_noise_k"] * spread)


def _hold(trigger: np.ndarray, stay: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Forward-only hysteresis (zones × steps): a run starts where ``trigger & ok`` holds and
    lasts while ``stay & ok`` does. Causal — nothing before the trigger is flagged — and a
    leak hovering around a strict (noise-scaled) threshold stays one incident."""
    stay = stay & ok
    trig = trigger & ok
    out = np.zeros_like(stay)
    for z in range(stay.shape[0]):
        for a, b in runs(stay[z], min_len=1, merge=0):
            hit = np.flatnonzero(trig[z, a:b + 1])
            if hit.size:
                out[z, a + hit[0]:b + 1] = True
    return out


def _nan(x: np.ndarray | None, shape) -> np.ndarray:
    return np.full(shape, np.nan) if x is None else x


def masks(sig: dict[str, np.ndarray], neighbours: list[list[int]], step_minutes: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per kind: (mask, detection signal) over zones × steps."""
    shape = next(iter(sig.values())).shape
    g = {k: _nan(sig.get(k), shape) for k in (
        "electric_load", "data_traffic", "connected_devices", "footfall", "traffic_speed",
        "traffic_flow", "water_pressure", "water_flow", "air_temperature", "no2")}
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps (window warm-up, dead zones)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        load = g["electric_load"]
        out["power_outage"] = (load <= T["power_load"], load)
        comm = np.nanmax(np.stack([g["data_traffic"], g["connected_devices"]]), axis=0)
        out["network_outage"] = ((comm <= T["network_data"]) & ~(load <= T["network_load_ok"]), comm)
        foot = g["footfall"]
        out["public_gathering"] = (foot >= T["gathering_foot"], foot)
        speed = g["traffic_speed"] - np.nanmedian(g["traffic_speed"], axis=0, keepdims=True)
        own = speed <= T["traffic_speed"]
        spill = np.zeros(shape, dtype=bool)
        for z, nbrs in enumerate(neighbours):
            for n in nbrs:
                spill[z] |= speed[n] <= T["traffic_neighbour_ratio"] * speed[z]
        out["traffic_incident"] = (own & ~spill, speed)
        w = max(1, DETECTORS["water_leak"].window_minutes // step_minutes)
        pres = trailing_mean(g["water_pressure"], w)
        flow = trailing_mean(g["water_flow"], w)
        ok = ~(flow < -0.02)
        out["water_leak"] = (_hold(pres <= leak_threshold(pres), pres <= T["leak_pressure"], ok), pres)
        w = max(1, DETECTORS["heatwave"].window_minutes // step_minutes)
        temp = trailing_mean(g["air_temperature"], w)
        hload = trailing_mean(g["electric_load"], w)
        hwater = trailing_mean(g["water_flow"], w)
        contrast = temp - _nanmin0(temp)
        out["heatwave"] = ((contrast >= T["heat_contrast"]) | _citywide_heat(temp, hload, hwater, step_minutes), temp)
    return out
