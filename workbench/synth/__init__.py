"""The reference city: a deterministic, seeded world with labelled events and sensor faults.

:func:`make_city` returns a lazy :class:`xarray.DataTree` (one node per system, dims
``sensor × time``, districts in ``/zones``); :func:`ground_truth` returns the labelled
events and faults that detectors are scored against. Detectors never import this module.

Physics, event signatures and fault rates follow ``REFERENCE_CITY.md``; the couplings are
listed in :data:`COUPLINGS` and in the city's ``couplings`` attribute. Departures, on
purpose: a city of 7 days or more has at least one heatwave; a heatwave's load and water
effects are applied directly (the temperature coupling uses the temperature without the
heatwave), so they show whatever the season. Traffic incidents and network outages spill into
the adjacent zones (queues, handed-over phones); the ground truth names those zones too, as
``role="neighbour"`` rows of the same event (incident scoring counts only ``"primary"`` rows).

Examples
--------
>>> from workbench.synth import make_city, ground_truth
>>> city = make_city(zones=4, sensors_per_system=8, days=7)
>>> sorted(city.children)[:3]
['communication', 'energy', 'environment']
>>> events, faults = ground_truth(city)
>>> list(events.columns[:7])
['kind', 'system', 'zone', 'sensor', 'start', 'end', 'severity']
"""

from __future__ import annotations

import json
import math

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry
from workbench.synth._signals import COUPLINGS, block
from workbench.synth._world import EVENT_KINDS, EVENT_SYSTEMS, FAULT_KINDS, Params, World

#: bump when the physics change: cached reference cities are regenerated
SYNTH_VERSION = 3

__all__ = ["SYNTH_VERSION", "make_city", "ground_truth", "world_of", "EVENT_KINDS", "FAULT_KINDS", "EVENT_SYSTEMS", "COUPLINGS"]

#: the largest default chunk (float64 bytes): below glibc's largest mmap threshold (32 MiB), so
#: the buffer Zarr decodes a chunk into is reused from the heap, not a fresh mmap page-faulted
#: on every read (docs/scale.md, "How the workbench chooses chunks")
_CHUNK_BYTES = 24e6


def _default_sensor_chunk(n_sensors: int, n_time: int) -> int:
    """Sensors per chunk: the whole time axis, at most ``_CHUNK_BYTES`` per chunk (one sensor
    when a single series is larger), the sensors split evenly."""
    per = max(1, int(_CHUNK_BYTES // (n_time * 8)))
    n_chunks = math.ceil(n_sensors / per)
    return math.ceil(n_sensors / n_chunks)


def _task(world: World, system: str, variable: str, s0: int, s1: int, t0: int, t1: int) -> np.ndarray:
    return block(world, system, variable, s0, s1, t0, t1)


def _bounds(n: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def make_city(
    *,
    zones: int = 12,
    sensors_per_system: int = 40,
    start: str = "2026-07-06",
    days: int = 28,
    freq: str = "15min",
    seed: int = 0,
    chunks: dict[str, int] | None = None,
    event_scale: float = 1.0,
    noise: float = 1.0,
    fault_rate: float = 0.02,
    events: bool = True,
    faults: bool = True,
) -> xr.DataTree:
    """Build the reference city, lazily.

    Parameters
    ----------
    zones, sensors_per_system, start, days, freq
        Size of the city: districts, sensors in each of the seven systems, first day,
        length and sampling interval (must divide a day).
    seed
        Same seed, same city bit for bit; another seed places events and faults elsewhere.
    chunks
        ``{"sensor": n, "time": m}`` overrides the default chunks (whole time axis, at most
        24 MB per chunk). Values never depend on the chunking.
    event_scale, noise
        Multiply every event magnitude / every sensor's noise (for detection curves).
    fault_rate
        Expected faults per sensor and 30 days.
    events, faults
        Switch injected events / sensor faults off (an event-free twin for baselines).

    Returns
    -------
    xarray.DataTree
        Nodes ``/people /services /transport /communication /water /energy /environment``
        (dims ``sensor × time``, dask-backed) and ``/zones``.
    """
    params = Params(
        zones=zones, sensors_per_system=sensors_per_system, start=str(pd.Timestamp(start).date()) if pd.Timestamp(start) == pd.Timestamp(start).normalize() else str(pd.Timestamp(start)),
        days=days, freq=freq, seed=seed, event_scale=float(event_scale), noise=float(noise),
        fault_rate=float(fault_rate), events=bool(events), faults=bool(faults),
    )
    world = World.build(params)
    n_t = len(world.time)
    n_s = params.sensors_per_system
    chunks = dict(chunks or {})
    unknown = set(chunks) - {"sensor", "time"}
    if unknown:
        raise ValueError(f"chunks may name 'sensor' and 'time', not {sorted(unknown)}.")
    s_size = int(chunks.get("sensor", _default_sensor_chunk(n_s, n_t)))
    t_size = int(chunks.get("time", n_t))
    s_bounds, t_bounds = _bounds(n_s, s_size), _bounds(n_t, t_size)
    token = dask.base.tokenize(params.to_json())
    world_key = f"synth-world-{token}"

    nodes: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs=_root_attrs(params))}
    for system in registry.SYSTEMS:
        sens = world.sensors[system]
        data_vars = {}
        for var in registry.variables_of(system):
            name = f"synth-{system}-{var}-{token}"
            dsk = {world_key: world}
            for i, (s0, s1) in enumerate(s_bounds):
                for j, (t0, t1) in enumerate(t_bounds):
                    dsk[(name, i, j)] = (_task, world_key, system, var, s0, s1, t0, t1)
            arr = da.Array(
                dsk, name, chunks=(tuple(b - a for a, b in s_bounds), tuple(b - a for a, b in t_bounds)),
                dtype=np.float64, meta=np.empty((0, 0), dtype=np.float64),
            )
            data_vars[var] = (("sensor", "time"), arr, _var_attrs(var))
        coords = {
            "sensor": ("sensor", sens["sensor"].to_numpy(dtype=object)),
            "time": ("time", world.time.to_numpy()),
            "lat": ("sensor", sens["lat"].to_numpy(), {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("sensor", sens["lon"].to_numpy(), {"units": "degrees_east", "standard_name": "longitude"}),
            "zone": ("sensor", world.zone_ids[sens["zone_idx"].to_numpy()].astype(object), {"long_name": "district"}),
        }
        ds = xr.Dataset(data_vars, coords=coords, attrs={"system": system, "long_name": registry.load_yaml("variables.yml")["systems"][system]["long_name"]})
        ds["sensor"].attrs["cf_role"] = "timeseries_id"
        nodes[f"/{system}"] = ds
    nodes["/zones"] = _zones_dataset(world)
    return xr.DataTree.from_dict(nodes)


def _var_attrs(var: str) -> dict:
    v = registry.variable(var)
    attrs = {"units": v["units"], "long_name": v["long_name"], "system": v["system"]}
    if v.get("standard_name"):
        attrs["standard_name"] = v["standard_name"]
    attrs["cell_methods"] = "time: point"
    return attrs


def _root_attrs(params: Params) -> dict:
    return {
        "title": "Smart City Workbench reference city",
        "Conventions": "CF-1.10",
        "source": "workbench.synth.make_city",
        "synth_params": params.to_json(),
        "couplings": json.dumps([list(c) for c in COUPLINGS]),
        # no wall-clock time here: the same seed gives the same city, attrs included
        "history": f"workbench.synth.make_city({params.to_json()}) [synth v{SYNTH_VERSION}]",
    }


def _zones_dataset(world: World) -> xr.Dataset:
    zt = world.zone_table
    ds = xr.Dataset(
        {
            "zone_name": ("zone", zt["zone_name"].to_numpy(dtype=object), {"long_name": "district name"}),
            "area_km2": ("zone", zt["area_km2"].to_numpy(), {"units": "km2", "long_name": "area"}),
            "population": ("zone", zt["population"].to_numpy(dtype=np.int64), {"units": "1", "long_name": "residents"}),
            "centrality": ("zone", zt["centrality"].to_numpy(), {"units": "1", "long_name": "centrality (1 = city centre)"}),
            "neighbours": ("zone", np.array([" ".join(world.zone_ids[n]) for n in world.neighbours], dtype=object),
                           {"long_name": "adjacent districts (space-separated ids)"}),
        },
        coords={
            "zone": ("zone", world.zone_ids.astype(object)),
            "lat": ("zone", zt["lat"].to_numpy(), {"units": "degrees_north", "long_name": "centroid latitude"}),
            "lon": ("zone", zt["lon"].to_numpy(), {"units": "degrees_east", "long_name": "centroid longitude"}),
        },
        attrs={"geojson": world.geojson(), "long_name": "districts"},
    )
    return ds


def world_of(city: xr.DataTree) -> World:
    """Rebuild the world (zones, sensors, events, faults) a reference city was made from."""
    text = city.attrs.get("synth_params")
    if not text:
        raise ValueError("this city was not made by workbench.synth.make_city (no 'synth_params' attribute).")
    return World.build(Params.from_json(text))


def ground_truth(city: xr.DataTree) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labelled events and faults of a reference city.

    Returns
    -------
    events, faults : pandas.DataFrame
        Columns ``kind, system, zone, sensor, start, end, severity`` (end inclusive).
        Events: one row per event, zone and affected system (``sensor`` empty), plus
        ``event_id`` and ``role`` (``"primary"``: the event's zone; ``"neighbour"``: an
        adjacent zone its effect spills into — transport for traffic incidents,
        communication for network outages); severity is the effect on the event's primary
        signal (e.g. the fraction by which an outage drops load; for a neighbour row the
        spill's size: half the speed drop, the +10-30 % traffic rise). Faults: one row per sensor fault, plus
        ``variable`` (empty when the whole sensor dropped out); severity is the spike size
        in noise units, the drift fraction, or 1.
    """
    return world_of(city).truth()
