"""The reference city's world: zones, sensors, and where events and faults happen.

Everything here is drawn once from the seed when the city is built (cheap: tables of
zones, sensors, events and faults). The signals themselves are computed chunk by chunk
in :mod:`workbench.synth._signals` from these tables.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from workbench import registry

__all__ = ["Params", "World", "EVENT_KINDS", "FAULT_KINDS", "EVENT_SYSTEMS"]

EVENT_KINDS = registry.event_kinds()
FAULT_KINDS = ("gap", "flatline", "spike", "drift")

#: systems each event kind touches (one ground-truth row per event, zone and system)
EVENT_SYSTEMS = registry.event_systems()

#: events per zone and 30 days (heatwaves: per city)
_RATES = {
    "water_leak": 0.5,
    "power_outage": 0.4,
    "network_outage": 0.4,
    "traffic_incident": 0.8,
    "public_gathering": 0.5,
}
#: duration range in minutes
_DURATIONS = {
    "heatwave": (2 * 1440, 5 * 1440),
    "water_leak": (6 * 60, 3 * 1440),
    "power_outage": (30, 180),
    "network_outage": (15, 240),
    "traffic_incident": (30, 120),
    "public_gathering": (120, 300),
}
#: the event's effect on its primary signal at u=0 and u=1 (REFERENCE_CITY.md), the severity
_SEVERITY = {
    "heatwave": (0.10, 0.25),  # electric load increase
    "water_leak": (0.10, 0.40),  # extra flow as a fraction of minimum night flow
    "power_outage": (0.90, 1.00),  # load drop
    "network_outage": (0.95, 1.00),  # data traffic drop
    "traffic_incident": (0.30, 0.60),  # speed drop
    "public_gathering": (1.00, 3.00),  # footfall increase
}
#: events whose effect spreads to the adjacent zones (``_signals._fields`` ``<kind>_nb``): the
#: systems it moves there and the spill's size as a multiple of the event's own severity
#: (queues spread at half the speed drop; neighbouring cells carry +10-30 % more traffic)
_NEIGHBOUR_SPILL = {
    "traffic_incident": (("transport",), lambda u: 0.5 * (0.30 + 0.30 * u)),
    "network_outage": (("communication",), lambda u: 0.10 + 0.20 * u),
}
_FAULT_VARS_EXCLUDED = {"rainfall", "service_requests"}

_PREFIX = {
    "people": "PPL",
    "services": "SRV",
    "transport": "TRA",
    "communication": "COM",
    "water": "WAT",
    "energy": "ENE",
    "environment": "ENV",
}
_NAMES = (
    "Old Town", "Harbour", "Riverside", "Station", "Market", "University", "Northgate", "Southbank",
    "Eastfield", "Westend", "Hillcrest", "Parkside", "Docklands", "Cathedral", "Mill Lane", "Brookside",
    "Foundry", "Meadows", "Castle Hill", "Canalside", "Ashgrove", "Beacon", "Copperfield", "Elmwood",
    "Fairview", "Greenway", "Highbury", "Ironbridge", "Kingsmead", "Lakeside", "Marlow", "Newbridge",
    "Orchard", "Pinewood", "Queensway", "Redhill", "Stonegate", "Tanner's Yard", "Upton", "Victoria",
)


@dataclass(frozen=True)
class Params:
    """Everything that defines a reference city; stored in the city's attrs."""

    zones: int = 12
    sensors_per_system: int = 40
    start: str = "2026-07-06"
    days: int = 28
    freq: str = "15min"
    seed: int = 0
    event_scale: float = 1.0
    noise: float = 1.0
    fault_rate: float = 0.02
    events: bool = True
    faults: bool = True
    center_lat: float = 51.0
    center_lon: float = 7.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Params":
        return cls(**json.loads(text))


@dataclass
class World:
    """Zones, sensors, events and faults of one reference city (small tables)."""

    params: Params
    time: pd.DatetimeIndex = field(repr=False)
    step_minutes: int = 15
    zone_ids: np.ndarray = field(repr=False, default=None)
    zone_table: pd.DataFrame = field(repr=False, default=None)
    polygons: list = field(repr=False, default=None)
    neighbours: list = field(repr=False, default=None)
    sensors: dict = field(repr=False, default=None)  # system -> DataFrame
    events: pd.DataFrame = field(repr=False, default=None)  # one row per event and zone
    faults: pd.DataFrame = field(repr=False, default=None)  # one row per fault

    @classmethod
    def build(cls, params: Params) -> "World":
        if params.zones < 1 or params.sensors_per_system < 1 or params.days < 1:
            raise ValueError("make_city needs zones, sensors_per_system and days of at least 1.")
        step = pd.Timedelta(params.freq)
        if step <= pd.Timedelta(0) or pd.Timedelta("1D") % step != pd.Timedelta(0):
            raise ValueError(f"freq {params.freq!r} must divide a day evenly (e.g. '15min', '1h').")
        n_t = int(pd.Timedelta(days=params.days) / step)
        time = pd.date_range(pd.Timestamp(params.start), periods=n_t, freq=step).as_unit("ns")
        w = cls(params=params, time=time, step_minutes=int(step / pd.Timedelta("1min")))
        w._zones()
        w._sensors()
        w.events = w._events() if params.events else _empty_events()
        w.faults = w._faults() if params.faults else _empty_faults()
        return w

    # -- zones -------------------------------------------------------------------------
    def _zones(self) -> None:
        p = self.params
        rng = np.random.default_rng([p.seed, 1])
        ncol = math.ceil(math.sqrt(p.zones))
        nrow = math.ceil(p.zones / ncol)
        cell_km = 2.0
        # jittered grid vertices, shared by neighbouring cells so the zones tile the city
        vx = np.arange(ncol + 1)[None, :] * cell_km + np.zeros((nrow + 1, 1))
        vy = np.arange(nrow + 1)[:, None] * cell_km + np.zeros((1, ncol + 1))
        inner = np.ones_like(vx, dtype=bool)
        inner[[0, -1], :] = False
        inner[:, [0, -1]] = False
        vx = vx + inner * rng.uniform(-0.3, 0.3, vx.shape) * cell_km
        vy = vy + inner * rng.uniform(-0.3, 0.3, vy.shape) * cell_km
        cx, cy = ncol * cell_km / 2, nrow * cell_km / 2
        km_lat = 111.32
        km_lon = 111.32 * math.cos(math.radians(p.center_lat))
        rows = []
        self.polygons = []
        cells = [(r, c) for r in range(nrow) for c in range(ncol)][: p.zones]
        for k, (r, c) in enumerate(cells):
            ring = [(vx[r, c], vy[r, c]), (vx[r, c + 1], vy[r, c + 1]), (vx[r + 1, c + 1], vy[r + 1, c + 1]), (vx[r + 1, c], vy[r + 1, c])]
            xs = np.array([q[0] for q in ring])
            ys = np.array([q[1] for q in ring])
            area = 0.5 * abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))
            mx, my = xs.mean(), ys.mean()
            dist = math.hypot(mx - cx, my - cy) / math.hypot(cx, cy)
            centrality = float(np.clip(1.0 - dist, 0.0, 1.0))
            density = 6000 * (0.6 + 0.8 * rng.random()) * (0.5 + 0.5 * (1 - centrality))  # residents per km²
            lonlat = [(p.center_lon + (x - cx) / km_lon, p.center_lat + (y - cy) / km_lat) for x, y in ring]
            self.polygons.append(lonlat)
            rows.append(
                dict(
                    zone=f"Z{k + 1:02d}",
                    zone_name=_NAMES[k] if k < len(_NAMES) else f"District {k + 1}",
                    lat=p.center_lat + (my - cy) / km_lat,
                    lon=p.center_lon + (mx - cx) / km_lon,
                    area_km2=float(area),
                    population=int(round(density * area)),
                    centrality=centrality,
                    heat_offset=float(0.8 * centrality + rng.uniform(-0.3, 0.3)),
                    rain_mult=float(rng.uniform(0.8, 1.2)),
                    _row=r,
                    _col=c,
                )
            )
        table = pd.DataFrame(rows)
        pos = {(r, c): k for k, (r, c) in enumerate(cells)}
        self.neighbours = [
            [pos[q] for q in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)) if q in pos] for (r, c) in cells
        ]
        self.zone_table = table.drop(columns=["_row", "_col"])
        self.zone_ids = self.zone_table["zone"].to_numpy(dtype=object)

    def geojson(self) -> str:
        """The zone polygons as a GeoJSON FeatureCollection (lon, lat)."""
        feats = []
        for (_, z), ring in zip(self.zone_table.iterrows(), self.polygons):
            coords = [[round(x, 6), round(y, 6)] for x, y in ring]
            feats.append(
                {
                    "type": "Feature",
                    "properties": {"zone": z["zone"], "zone_name": z["zone_name"]},
                    "geometry": {"type": "Polygon", "coordinates": [coords + [coords[0]]]},
                }
            )
        return json.dumps({"type": "FeatureCollection", "features": feats})

    # -- sensors -----------------------------------------------------------------------
    def _sensors(self) -> None:
        p = self.params
        self.sensors = {}
        for s_idx, system in enumerate(registry.SYSTEMS):
            rng = np.random.default_rng([p.seed, 2, s_idx])
            n = p.sensors_per_system
            zone = np.arange(n) % p.zones
            # a point inside the zone's quadrilateral (bilinear in the cell)
            u, v = rng.uniform(0.15, 0.85, n), rng.uniform(0.15, 0.85, n)
            lon = np.empty(n)
            lat = np.empty(n)
            for i in range(n):
                ring = self.polygons[zone[i]]
                (x0, y0), (x1, y1), (x2, y2), (x3, y3) = ring
                lon[i] = (1 - u[i]) * (1 - v[i]) * x0 + u[i] * (1 - v[i]) * x1 + u[i] * v[i] * x2 + (1 - u[i]) * v[i] * x3
                lat[i] = (1 - u[i]) * (1 - v[i]) * y0 + u[i] * (1 - v[i]) * y1 + u[i] * v[i] * y2 + (1 - u[i]) * v[i] * y3
            self.sensors[system] = pd.DataFrame(
                dict(
                    sensor=[f"{_PREFIX[system]}{i + 1:05d}" for i in range(n)],
                    zone_idx=zone,
                    lat=lat,
                    lon=lon,
                    scale=rng.lognormal(0.0, 0.35, n),
                    noise_sd=rng.uniform(0.03, 0.10, n),
                    offset=rng.normal(0.0, 0.3, n),
                    level=rng.uniform(0.0, 1.0, n),  # a per-sensor free parameter (speed limit, pressure head)
                )
            )

    # -- events ------------------------------------------------------------------------
    def _events(self) -> pd.DataFrame:
        p = self.params
        rng = np.random.default_rng([p.seed, 3])
        n_t = len(self.time)
        months = p.days / 30.0
        rows = []
        eid = 0

        def start_step(dur_steps: int, daytime: tuple[int, int] | None) -> int:
            hi = max(1, n_t - dur_steps)
            if daytime is None:
                return int(rng.integers(0, hi))
            day = int(rng.integers(0, max(1, p.days)))
            minute = int(rng.integers(daytime[0] * 60, daytime[1] * 60))
            return int(min(hi - 1, (day * 1440 + minute) // self.step_minutes))

        n_hw = int(rng.poisson(p.days / 45.0))
        if p.days >= 7:
            n_hw = max(1, n_hw)
        for _ in range(n_hw):
            dur = int(rng.integers(*_DURATIONS["heatwave"]) // self.step_minutes)
            t0 = start_step(dur, None)
            k = max(1, int(round(p.zones * rng.uniform(0.5, 1.0))))
            zones = np.sort(rng.choice(p.zones, size=k, replace=False))
            u = float(rng.random())
            for z in zones:
                rows.append((eid, "heatwave", int(z), t0, min(n_t - 1, t0 + dur - 1), u))
            eid += 1
        daytime = {"public_gathering": (10, 19), "traffic_incident": (6, 21)}
        for kind, rate in _RATES.items():
            for z in range(p.zones):
                for _ in range(int(rng.poisson(rate * months))):
                    lo, hi = _DURATIONS[kind]
                    dur = max(1, int(rng.integers(lo, hi + 1)) // self.step_minutes)
                    t0 = start_step(dur, daytime.get(kind))
                    rows.append((eid, kind, z, t0, min(n_t - 1, t0 + dur - 1), float(rng.random())))
                    eid += 1
        ev = pd.DataFrame(rows, columns=["event_id", "kind", "zone_idx", "t0", "t1", "u"])
        return ev.sort_values(["t0", "event_id", "zone_idx"], kind="stable").reset_index(drop=True)

    # -- faults ------------------------------------------------------------------------
    def _faults(self) -> pd.DataFrame:
        p = self.params
        n_t = len(self.time)
        months = p.days / 30.0
        spd = 1440 // self.step_minutes
        rows = []
        for s_idx, system in enumerate(registry.SYSTEMS):
            rng = np.random.default_rng([p.seed, 4, s_idx])
            eligible = [v for v in registry.variables_of(system) if v not in _FAULT_VARS_EXCLUDED]
            counts = rng.poisson(p.fault_rate * months, p.sensors_per_system)
            for sensor in np.flatnonzero(counts):
                for _ in range(int(counts[sensor])):
                    kind = FAULT_KINDS[int(rng.integers(0, 4))] if eligible else "gap"
                    if kind == "gap":
                        dur = int(rng.integers(spd // 24, spd + 1))
                        variable, mag = "", 1.0
                    elif kind == "flatline":
                        dur = int(rng.integers(2 * spd // 24, 2 * spd + 1))
                        variable, mag = eligible[int(rng.integers(0, len(eligible)))], 1.0
                    elif kind == "spike":
                        dur = int(rng.integers(1, 4))
                        variable, mag = eligible[int(rng.integers(0, len(eligible)))], float(rng.uniform(5, 20))
                    else:
                        dur = int(rng.integers(2 * spd, 7 * spd + 1))
                        sign = 1.0 if rng.random() < 0.5 else -1.0
                        variable, mag = eligible[int(rng.integers(0, len(eligible)))], sign * float(rng.uniform(0.1, 0.3))
                    dur = max(1, min(dur, n_t))
                    t0 = int(rng.integers(0, max(1, n_t - dur + 1)))
                    rows.append((system, int(sensor), variable, kind, t0, t0 + dur - 1, mag))
        return pd.DataFrame(rows, columns=["system", "sensor_idx", "variable", "kind", "t0", "t1", "magnitude"])

    # -- ground truth ------------------------------------------------------------------
    def truth(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(events, faults) with columns kind, system, zone, sensor, start, end, severity.

        Events also carry ``event_id`` and ``role``: ``"primary"`` for the event's own zone,
        ``"neighbour"`` for an adjacent zone its effect spills into (traffic incidents:
        transport; network outages: communication), same ``event_id``.
        """
        cols = ["kind", "system", "zone", "sensor", "start", "end", "severity"]
        rows = []
        n_t = len(self.time)
        edge = 60 // self.step_minutes  # traffic moves in the hour before and after a gathering
        es = self.params.event_scale
        for r in self.events.itertuples():
            lo, hi = _SEVERITY[r.kind]
            sev = es * (lo + (hi - lo) * r.u)
            for system in EVENT_SYSTEMS[r.kind]:
                t0, t1 = r.t0, r.t1
                if r.kind == "public_gathering" and system == "transport":
                    t0, t1 = max(0, t0 - edge), min(n_t - 1, t1 + edge)
                rows.append((r.kind, system, self.zone_ids[r.zone_idx], "", self.time[t0], self.time[t1], sev, r.event_id, "primary"))
            if r.kind in _NEIGHBOUR_SPILL:  # the spill is in the data, so it is in the truth
                systems, size = _NEIGHBOUR_SPILL[r.kind]
                for nb in self.neighbours[r.zone_idx]:
                    for system in systems:
                        rows.append((r.kind, system, self.zone_ids[nb], "", self.time[r.t0], self.time[r.t1], es * size(r.u),
                                     r.event_id, "neighbour"))
        events = pd.DataFrame(rows, columns=[*cols, "event_id", "role"])
        frows = []
        for f in self.faults.itertuples():
            sens = self.sensors[f.system].iloc[f.sensor_idx]
            sev = abs(f.magnitude)
            frows.append((f.kind, f.system, self.zone_ids[sens.zone_idx], sens.sensor, self.time[f.t0], self.time[f.t1], sev, f.variable))
        faults = pd.DataFrame(frows, columns=[*cols, "variable"])
        for df in (events, faults):
            for c in ("start", "end"):
                df[c] = pd.to_datetime(df[c])
        return events, faults


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({"event_id": pd.Series(dtype="int64"), "kind": pd.Series(dtype="str"), "zone_idx": pd.Series(dtype="int64"),
                         "t0": pd.Series(dtype="int64"), "t1": pd.Series(dtype="int64"), "u": pd.Series(dtype="float64")})


def _empty_faults() -> pd.DataFrame:
    return pd.DataFrame({"system": pd.Series(dtype="str"), "sensor_idx": pd.Series(dtype="int64"), "variable": pd.Series(dtype="str"),
                         "kind": pd.Series(dtype="str"), "t0": pd.Series(dtype="int64"), "t1": pd.Series(dtype="int64"),
                         "magnitude": pd.Series(dtype="float64")})
