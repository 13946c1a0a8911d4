"""The reference city's physics, evaluated for any block of sensors × time steps.

Each function here is pure: the value of a sensor at a step depends only on the world's
tables and the step, never on the block that asks. Couplings (REFERENCE_CITY.md):

- temperature drives electric load (+3 %/°C above 20 °C, +2.5 %/°C below 12 °C, through
  the temperature of ``LOAD_LAG_MIN`` earlier: buildings store heat) and water flow
  (+1.5 %/°C above 20 °C);
- commute rhythm drives traffic, footfall and, through footfall, mobile network load;
- rain slows traffic (−5–15 %) and lowers footfall; traffic drives NO2 ``NO2_LAG_MIN`` later.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from workbench.synth import _noise
from workbench.synth._world import World

__all__ = ["block", "LOAD_LAG_MIN", "NO2_LAG_MIN", "COUPLINGS"]

LOAD_LAG_MIN = 120
NO2_LAG_MIN = 60
#: built-in couplings: (driver, response, sign, lag in minutes)
COUPLINGS = (
    ("air_temperature", "electric_load", +1, LOAD_LAG_MIN),
    ("air_temperature", "water_flow", +1, 0),
    ("rainfall", "traffic_speed", -1, 0),
    ("footfall", "data_traffic", +1, 0),
    ("traffic_flow", "no2", +1, NO2_LAG_MIN),
)

_TRAFFIC_PEAK = 2.0  # the traffic profile's weekday maximum, for congestion
_SOFT = 1.0  # softness (°C) of the heating/cooling thresholds


def _g(h: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((h - mu) / sigma) ** 2)


def _softplus(x: np.ndarray) -> np.ndarray:
    return _SOFT * np.logaddexp(0.0, x / _SOFT)


class _Calendar:
    """Calendar fields of steps t (int array) of one world."""

    def __init__(self, world: World, t: np.ndarray):
        start = world.time[0]
        minutes = t.astype(np.float64) * world.step_minutes
        mod = start.hour * 60 + start.minute + minutes
        self.hod = (mod % 1440.0) / 60.0
        day = np.floor(mod / 1440.0)
        self.dow = ((start.day_of_week + day) % 7).astype(np.int64)
        self.weekend = self.dow >= 5
        self.doy = start.day_of_year + day + self.hod / 24.0
        epoch_min = (start - pd.Timestamp("2000-01-01")) / pd.Timedelta("1min")
        self.habs = (epoch_min + minutes) / 60.0


def _weather_terms(world: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([world.params.seed, 5])
    return rng.uniform(1.0, 2.0, 4), rng.uniform(40.0, 240.0, 4), rng.uniform(0, 2 * np.pi, 4)


def _hourly_wiggle(world: World, cal: _Calendar, stream: str, rows: int = 1) -> np.ndarray:
    """Smooth random variation on the scale of hours (rows × time, unit variance at the knots).

    Independent standard normals at every whole hour (one set per row), linearly
    interpolated: a pure function of (seed, stream, row, hour), so chunks agree.
    """
    hour = np.floor(cal.habs).astype(np.int64)
    frac = cal.habs - hour
    out = np.empty((rows, len(hour)))
    for r in range(rows):
        key1 = _noise.stream_key(world.params.seed, stream, r, "u1")
        key2 = _noise.stream_key(world.params.seed, stream, r, "u2")
        knots = np.arange(hour.min(), hour.max() + 2) if len(hour) else np.arange(0)
        u1, u2 = _noise.uniform1d(key1, knots), _noise.uniform1d(key2, knots)
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)
        i = hour - (knots[0] if len(knots) else 0)
        out[r] = (1 - frac) * z[i] + frac * z[np.minimum(i + 1, len(z) - 1)]
    return out


def temperature(world: World, cal: _Calendar) -> np.ndarray:
    """Air temperature (zone × time, °C) without heatwaves.

    Season + diurnal cycle + weather fronts (days) + passing clouds and showers (hours,
    ±0.8 °C), so the temperature → load lag is identifiable once the rhythm is removed.
    """
    season = 11.0 + 9.0 * np.cos(2 * np.pi * (cal.doy - 200.0) / 365.25)
    diurnal = 5.0 * np.cos(2 * np.pi * (cal.hod - 15.0) / 24.0)
    a, period, phase = _weather_terms(world)
    fronts = (a[:, None] * np.sin(2 * np.pi * cal.habs[None, :] / period[:, None] + phase[:, None])).sum(0)
    clouds = 0.8 * _hourly_wiggle(world, cal, "clouds")[0]
    city = season + diurnal + fronts + clouds
    return city[None, :] + world.zone_table["heat_offset"].to_numpy()[:, None]


def traffic_demand(world: World, cal: _Calendar) -> np.ndarray:
    """Zone × time multiplier of traffic demand: ±8 % from hour to hour (trips vary)."""
    return 1.0 + 0.08 * _hourly_wiggle(world, cal, "traffic-demand", rows=len(world.zone_ids))


def rain(world: World, cal: _Calendar) -> np.ndarray:
    """Rainfall (zone × time, mm/h): 6-hour slots, about 15 % wet, each a smooth episode."""
    slot = np.floor(cal.habs / 6.0).astype(np.int64)
    frac = cal.habs / 6.0 - slot
    seed = world.params.seed
    wet = _noise.uniform1d(_noise.stream_key(seed, "rain-wet"), slot) < 0.15
    intensity = -np.log(_noise.uniform1d(_noise.stream_key(seed, "rain-mm"), slot)) * 1.5
    city = wet * intensity * np.sin(np.pi * frac) ** 2
    return city[None, :] * world.zone_table["rain_mult"].to_numpy()[:, None]


def traffic_profile(cal: _Calendar) -> np.ndarray:
    h = cal.hod
    wd = 0.15 + 1.8 * _g(h, 8.0, 1.0) + 1.5 * _g(h, 17.5, 1.3) + 0.6 * _g(h, 13.0, 3.0)
    we = 0.15 + 0.9 * _g(h, 14.0, 3.5)
    return np.where(cal.weekend, we, wd)


def footfall_profile(world: World, cal: _Calendar) -> np.ndarray:
    h = cal.hod
    c = world.zone_table["centrality"].to_numpy()[:, None]
    work = 0.08 + 1.2 * _g(h, 8.5, 1.0) + 1.5 * _g(h, 12.5, 1.2) + 1.0 * _g(h, 17.5, 1.2)
    home = 0.08 + 0.5 * _g(h, 9.0, 2.0) + 0.8 * _g(h, 18.5, 2.0)
    wd = c * work[None, :] + (1 - c) * home[None, :]
    we = np.broadcast_to(0.08 + 1.2 * _g(h, 14.5, 2.5), wd.shape)
    return np.where(cal.weekend[None, :], we, wd)


def _fields(world: World, t0: int, t1: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per event kind: (activation, activation × u) over zones × steps t0..t1-1.

    Extra keys: ``public_gathering_edge`` (the hour before and after a gathering),
    ``<kind>_nb`` (the largest activation among a zone's neighbours).
    """
    nz, n = len(world.zone_ids), t1 - t0
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ramp = {"heatwave": 12 * 60 // world.step_minutes}
    edge = 60 // world.step_minutes
    ev = world.events
    for kind in ("heatwave", "water_leak", "power_outage", "network_outage", "traffic_incident", "public_gathering"):
        out[kind] = (np.zeros((nz, n)), np.zeros((nz, n)))
    out["public_gathering_edge"] = (np.zeros((nz, n)), np.zeros((nz, n)))
    t = np.arange(t0, t1)
    sel = ev[(ev["t1"] + edge >= t0) & (ev["t0"] - edge < t1)]
    for kind, z, a, b, u in zip(sel["kind"], sel["zone_idx"], sel["t0"], sel["t1"], sel["u"]):
        r = max(1, ramp.get(kind, 1))
        env = np.clip(np.minimum(t - a + 1, b - t + 1) / r, 0.0, 1.0)
        act, actu = out[kind]
        np.maximum(act[z], env, out=act[z])
        np.maximum(actu[z], env * u, out=actu[z])
        if kind == "public_gathering":
            near = (((t >= a - edge) & (t < a)) | ((t > b) & (t <= b + edge))).astype(float)
            act, actu = out["public_gathering_edge"]
            np.maximum(act[z], near, out=act[z])
            np.maximum(actu[z], near * u, out=actu[z])
    for kind in ("network_outage", "traffic_incident"):
        act, actu = out[kind]
        nb, nbu = np.zeros_like(act), np.zeros_like(actu)
        for z, nbrs in enumerate(world.neighbours):
            if nbrs:
                nb[z] = act[nbrs].max(0)
                nbu[z] = actu[nbrs].max(0)
        out[f"{kind}_nb"] = (nb, nbu)
    return out


def _effect(fields: dict, key: str, lo: float, hi: float, scale: float) -> np.ndarray:
    """Zone × time effect lo..hi (by each event's u) where active, 0 elsewhere."""
    act, actu = fields[key]
    return scale * (lo * act + (hi - lo) * actu)


def _poisson(u: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Poisson quantile of uniform ``u`` with mean ``mu`` (inverse CDF, vectorised)."""
    k = np.zeros(u.shape)
    p = np.exp(-mu)
    cdf = p.copy()
    todo = u > cdf
    i = 0
    while todo.any() and i < 400:
        i += 1
        k += todo
        p = p * mu / i
        cdf = cdf + p
        todo &= u > cdf
    return k


def _zone_signal(world: World, system: str, variable: str, cal: _Calendar, f: dict, lag_cal) -> np.ndarray:
    """Noise-free zone-level factor (zones × time) of one variable, before sensor scale."""
    es = world.params.event_scale
    r = rain(world, cal)
    wet = np.clip(r / 2.0, 0.0, 1.0)
    if variable == "air_temperature":
        return temperature(world, cal) + _effect(f, "heatwave", 4.0, 8.0, es)
    if variable == "rainfall":
        return r
    if variable in ("traffic_flow", "traffic_speed", "no2", "pm25"):
        prof = traffic_profile(cal)[None, :] * traffic_demand(world, cal)
        if variable == "traffic_flow":
            return (
                prof
                * (1 - 0.05 * wet)
                * (1 - _effect(f, "traffic_incident", 0.2, 0.4, es))
                * (1 - 0.5 * _effect(f, "traffic_incident_nb", 0.2, 0.4, es))
                * (1 + _effect(f, "public_gathering_edge", 0.3, 0.6, es))
            )
        if variable == "traffic_speed":
            congestion = np.clip(prof / _TRAFFIC_PEAK, 0.0, 1.0)
            return (
                (1 - 0.35 * congestion)
                * (1 - 0.05 * (r > 0.05) - 0.10 * wet)
                * (1 - _effect(f, "traffic_incident", 0.3, 0.6, es))
                * (1 - 0.5 * _effect(f, "traffic_incident_nb", 0.3, 0.6, es))
            )
        if variable == "no2":
            past = lag_cal(NO2_LAG_MIN)
            lagged = traffic_profile(past)[None, :] * traffic_demand(world, past)
            return (12.0 + 28.0 * lagged * (1 + _effect(f, "traffic_incident", 0.2, 0.5, es))) * (1 - 0.2 * wet)
        a, period, phase = _weather_terms(world)
        slow = np.sin(2 * np.pi * cal.habs / (period[0] * 2.5) + phase[1])[None, :]
        return (9.0 + 5.0 * (1 + slow) + 4.0 * prof) * (1 - 0.3 * wet)
    if variable in ("footfall", "data_traffic", "connected_devices"):
        foot = footfall_profile(world, cal) * (1 - 0.3 * wet) * (1 + _effect(f, "public_gathering", 1.0, 3.0, es))
        if variable == "footfall":
            return foot
        evening = _g(cal.hod, 21.0, 2.0)[None, :]
        outage = (
            (1 - _effect(f, "power_outage", 0.3, 0.7, es))
            * np.clip(1 - _effect(f, "network_outage", 0.95, 1.0, es), 0.0, None)
            * (1 + _effect(f, "network_outage_nb", 0.1, 0.3, es))
        )
        if variable == "data_traffic":
            return (0.3 + 0.8 * foot + 0.3 * evening) * outage
        return (0.5 + 0.4 * foot + 0.2 * evening) * outage
    if variable == "electric_load":
        h = cal.hod
        prof = 0.6 + 0.75 * _g(h, 10.0, 2.5) + 0.65 * _g(h, 19.0, 2.0)
        prof = np.where(cal.weekend, 0.87 * prof, prof)[None, :]
        tl = temperature(world, lag_cal(LOAD_LAG_MIN))
        thermal = 1 + 0.03 * _softplus(tl - 20.0) + 0.025 * _softplus(12.0 - tl)
        return (
            prof
            * thermal
            * (1 + _effect(f, "heatwave", 0.10, 0.25, es))
            * np.clip(1 - _effect(f, "power_outage", 0.90, 1.00, es), 0.0, None)
        )
    if variable in ("water_flow", "water_pressure"):
        h = cal.hod
        wd = 0.35 + 1.15 * _g(h, 7.5, 1.2) + 0.95 * _g(h, 19.5, 1.8) + 0.35 * _g(h, 13.0, 3.0)
        we = 0.35 + 1.0 * _g(h, 9.5, 1.5) + 0.9 * _g(h, 19.5, 2.0) + 0.4 * _g(h, 14.0, 3.0)
        prof = np.where(cal.weekend, we, wd)[None, :]
        if variable == "water_pressure":
            return (1 - 0.05 * (prof - 0.8)) * (1 - _effect(f, "water_leak", 0.02, 0.05, es))
        t = temperature(world, cal)
        demand = prof * (1 + 0.015 * _softplus(t - 20.0)) * (1 + _effect(f, "heatwave", 0.05, 0.15, es))
        return demand + 0.35 * _effect(f, "water_leak", 0.10, 0.40, es)
    if variable == "service_requests":
        h = cal.hod
        day = (0.15 + 1.3 * _g(h, 11.0, 3.5)) * np.where(cal.weekend, 0.5, 1.0)
        boost = (
            1
            + _effect(f, "water_leak", 1.0, 2.0, es)
            + _effect(f, "power_outage", 4.0, 8.0, es)
            + _effect(f, "network_outage", 3.0, 6.0, es)
            + _effect(f, "traffic_incident", 0.5, 1.0, es)
        )
        return day[None, :] * boost
    raise KeyError(f"the reference city does not simulate {variable!r}")


#: typical level per unit sensor scale
_LEVEL = {
    "footfall": 300.0,
    "traffic_flow": 600.0,
    "data_traffic": 15.0,
    "connected_devices": 600.0,
    "electric_load": 800.0,
    "water_flow": 100.0,
    "no2": 1.0,
    "pm25": 1.0,
}


def block(world: World, system: str, variable: str, s0: int, s1: int, t0: int, t1: int, *, faults: bool = True) -> np.ndarray:
    """Values of ``variable`` for sensors s0..s1-1 and steps t0..t1-1 (float64, sensor × time)."""
    sens = world.sensors[system].iloc[s0:s1]
    zidx = sens["zone_idx"].to_numpy()
    t = np.arange(t0, t1)
    cal = _Calendar(world, t)
    step = world.step_minutes

    def lag_cal(minutes: int) -> _Calendar:
        return _Calendar(world, t - minutes // step)

    f = _fields(world, t0, t1)
    z = _zone_signal(world, system, variable, cal, f, lag_cal)[zidx]
    p = world.params
    n_total = len(world.time)
    rows = np.arange(s0, s1)
    scale = sens["scale"].to_numpy()[:, None]
    sd = sens["noise_sd"].to_numpy()[:, None] * p.noise
    if variable == "service_requests":
        pop = world.zone_table["population"].to_numpy()
        per_zone = np.bincount(world.sensors[system]["zone_idx"], minlength=len(pop))
        rate = 2.0 * pop[zidx] / 30000.0 / np.maximum(per_zone[zidx], 1)  # requests per hour at the daily peak
        mu = rate[:, None] * z * (step / 60.0)
        u = _noise.uniform_rows(p.seed, f"{system}/{variable}", rows, t0, t1, n_total)
        values = _poisson(u, mu) / (step / 60.0)
    else:
        eps = _noise.normal(p.seed, f"{system}/{variable}", rows, t0, t1, n_total)
        if variable == "air_temperature":
            values = z + sens["offset"].to_numpy()[:, None] + 0.2 * p.noise * eps
        elif variable == "traffic_speed":
            vfree = 40.0 + 40.0 * sens["level"].to_numpy()[:, None]
            values = vfree * z * (1 + sd * eps)
        elif variable == "water_pressure":
            head = 3.5 + 1.5 * sens["level"].to_numpy()[:, None]
            values = head * z * (1 + 0.3 * sd * eps)
        else:
            values = _LEVEL.get(variable, 1.0) * scale * z * (1 + sd * eps)
        values = np.maximum(values, 0.0) if variable != "air_temperature" else values
    if faults and len(world.faults):
        _apply_faults(world, system, variable, values, s0, s1, t0, t1, sd)
    return values


def _apply_faults(world, system, variable, values, s0, s1, t0, t1, sd) -> None:
    fl = world.faults
    sel = fl[(fl["system"] == system) & (fl["sensor_idx"] >= s0) & (fl["sensor_idx"] < s1)
             & (fl["t1"] >= t0) & (fl["t0"] < t1) & ((fl["variable"] == variable) | (fl["variable"] == ""))]
    for r in sel.itertuples():
        i = r.sensor_idx - s0
        a, b = max(r.t0, t0), min(r.t1 + 1, t1)
        seg = slice(a - t0, b - t0)
        if r.kind == "gap":
            values[i, seg] = np.nan
        elif r.kind == "flatline":
            values[i, seg] = block(world, system, variable, r.sensor_idx, r.sensor_idx + 1, r.t0, r.t0 + 1, faults=False)[0, 0]
        elif r.kind == "spike":
            if variable == "air_temperature":
                values[i, seg] += r.magnitude * 0.2 * world.params.noise
            else:
                values[i, seg] *= 1 + r.magnitude * sd[i, 0]
        elif r.kind == "drift":
            ramp = (np.arange(a, b) - r.t0 + 1) / max(1, r.t1 - r.t0 + 1)
            if variable == "air_temperature":
                values[i, seg] += r.magnitude * 10.0 * ramp
            else:
                values[i, seg] *= 1 + r.magnitude * ramp
