"""Accepted readings held as integer codes -> de-duplicated ``(sensor, time)`` cube.

The :class:`~workbench.io._build.Collector` keeps each accepted reading as a few integers
and a float (:class:`Accepted`, about 30 bytes a reading). Here those columns become the
cube without a pandas pivot: per system, the sensors and times present are ranked (labels
sorted, times ascending), each reading gets a dense cell number, ``np.bincount`` over the
cells finds repeated ``(sensor, variable, time)`` keys in one pass, and the values are
scattered straight into preallocated ``float64`` arrays. Only the (usually few) repeated
keys go through pandas, to tell identical repeats (merged) from conflicts (quarantined).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry

__all__ = ["Accepted", "Tables", "dedupe", "build_tree", "assemble"]

#: columns of an :class:`Accepted` store and their dtypes (``row`` is int32 while it fits)
FIELDS = {"row": "int64", "sensor": "int32", "var": "int16", "time": "int32", "value": "float64", "site": "int32"}
_PAIR_LIMIT = 1_000_000  # (system, sensor, site) first positions tracked while there are at most this many


@dataclass
class Tables:
    """What the integer codes stand for."""

    sensors: np.ndarray  # object: sensor id per sensor code
    times: np.ndarray  # int64 ns per time code
    variables: list[str]  # registry name per variable code
    site_lat: np.ndarray  # float64 per site code
    site_lon: np.ndarray
    site_zone: np.ndarray  # object (str or None) per site code


class Accepted:
    """Columns of accepted readings in growing buffers (no concatenation at the end).

    Each column is one preallocated array, doubled when full (:meth:`reserve` takes an
    estimate; pages never written cost no memory), so :meth:`columns` returns views and the
    freed pieces of many small per-block arrays do not pile up in the allocator. Besides the
    columns it tracks, per ``(system, sensor, site)``, the position of the first reading (so
    the sensor coordinates need no pass over all readings) and the positions of readings the
    source flagged (sparse).
    """

    def __init__(self) -> None:
        self._buf: dict[str, np.ndarray] = {k: np.empty(0, "int32" if k == "row" else d) for k, d in FIELDS.items()}
        self._flagged: list[np.ndarray] = []
        self.first: dict[int, int] | None = {}
        self.n = 0

    def reserve(self, n: int) -> None:
        """Make room for ``n`` readings in all (only address space until written)."""
        if n > len(self._buf["row"]):
            for k, old in self._buf.items():
                new = np.empty(n, old.dtype)
                new[: self.n] = old[: self.n]
                self._buf[k] = new

    def append(self, *, system: np.ndarray, flag: np.ndarray | None = None, **cols: np.ndarray) -> None:
        n = len(cols["row"])
        row = np.asarray(cols["row"])
        if n and self._buf["row"].dtype == np.int32 and (row.min() < -(2**31) or row.max() >= 2**31):
            self._buf["row"] = self._buf["row"].astype("int64")
        if self.n + n > len(self._buf["row"]):
            self.reserve(max(2 * len(self._buf["row"]), self.n + n, 1024))
        cols.setdefault("site", np.full(n, -1, "int32"))
        for k in FIELDS:
            self._buf[k][self.n : self.n + n] = cols[k]
        if flag is not None and flag.any():
            self._flagged.append(self.n + np.flatnonzero(flag))
        self._note_first(system, cols["sensor"], cols["site"])
        self.n += n

    def _note_first(self, system: np.ndarray, sensor: np.ndarray, site: np.ndarray) -> None:
        if self.first is None:
            return
        if len(sensor) and (sensor.max() >= 2**28 or site.max() >= 2**27):
            self.first = None
            return
        key = (system.astype(np.int64) << 56) | (np.asarray(sensor, np.int64) << 28) | (np.asarray(site, np.int64) + 1)
        keys, pos = np.unique(key, return_index=True)
        for k, p in zip(keys.tolist(), (pos + self.n).tolist()):
            self.first.setdefault(k, p)
        if len(self.first) > _PAIR_LIMIT:
            self.first = None

    def flagged(self) -> np.ndarray:
        return np.concatenate(self._flagged) if self._flagged else np.zeros(0, np.int64)

    def columns(self) -> dict[str, np.ndarray]:
        """The columns (views of the first :attr:`n` entries of each buffer)."""
        return {k: b[: self.n] for k, b in self._buf.items()}


def _rank_present(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes present (ascending code order) and a lookup code -> position among them."""
    present = np.flatnonzero(np.bincount(codes, minlength=size))
    lookup = np.full(size, -1, dtype=np.int64 if size >= 2**31 else np.int32)
    lookup[present] = np.arange(len(present))
    return present, lookup


def _system_groups(acc: dict[str, np.ndarray], tables: Tables, keep: np.ndarray | None = None) -> list[tuple[str, np.ndarray | None]]:
    """(system, row positions or None for all rows) for each system with readings."""
    var_sys = np.array([registry.SYSTEMS.index(registry.system_of(v)) for v in tables.variables] or [0], dtype=np.int16)
    row_sys = var_sys[acc["var"]]
    if keep is not None:
        row_sys = np.where(keep, row_sys, -1)
    present = np.unique(var_sys[np.unique(acc["var"])]) if len(acc["var"]) else []
    out = []
    for k in present:
        if len(present) == 1 and keep is None:
            out.append((registry.SYSTEMS[k], None))
        else:
            idx = np.flatnonzero(row_sys == k)
            if len(idx):
                out.append((registry.SYSTEMS[k], idx))
    return out


def _cells(acc: dict[str, np.ndarray], idx: np.ndarray | None, tables: Tables) -> tuple[np.ndarray, int]:
    """Dense cell number of each reading in ``idx`` (variable, sensor, time), and the cell count."""
    take = (lambda a: a) if idx is None else (lambda a: a[idx])
    s, t, v = take(acc["sensor"]), take(acc["time"]), take(acc["var"])
    ps, ls = _rank_present(s, len(tables.sensors))
    pt, lt = _rank_present(t, len(tables.times))
    pv, lv = _rank_present(v, len(tables.variables))
    cell = lv[v].astype(np.int64)  # built in place: one array of 8 bytes a reading
    cell *= len(ps)
    cell += ls[s]
    cell *= len(pt)
    cell += lt[t]
    return cell, len(pv) * len(ps) * len(pt)


def dedupe(acc: dict[str, np.ndarray], tables: Tables) -> tuple[np.ndarray | None, np.ndarray, int]:
    """Find repeated ``(sensor, variable, time)`` keys.

    Returns ``(keep, conflict, merged)``: a boolean mask of readings kept (``None``: all),
    positions of readings quarantined as ``duplicate_conflict`` (every reading of a key whose
    values disagree by more than 1e-9 relative), and the number of identical repeats merged
    (the first is kept).
    """
    conflict: list[np.ndarray] = []
    extra: list[np.ndarray] = []
    for _, idx in _system_groups(acc, tables):
        cell, ncells = _cells(acc, idx, tables)
        dup = (np.bincount(cell, minlength=ncells) > 1)[cell]
        if not dup.any():
            continue
        pos = np.flatnonzero(dup) if idx is None else idx[dup]
        d = pd.DataFrame({"cell": cell[dup], "value": acc["value"][pos]}, index=pos)
        g = d.groupby("cell", sort=False)["value"]
        spread = g.transform("max") - g.transform("min")
        scale = d["value"].abs().groupby(d["cell"], sort=False).transform("max")
        bad = (spread > 1e-9 * np.maximum(scale, 1.0)).to_numpy()
        conflict.append(pos[bad])
        ok = d[~bad]
        extra.append(ok.index.to_numpy()[ok["cell"].duplicated(keep="first").to_numpy()])
    if not conflict:
        return None, np.zeros(0, np.int64), 0
    keep = np.ones(len(acc["row"]), dtype=bool)
    bad_pos = np.sort(np.concatenate(conflict))
    extras = np.concatenate(extra)
    keep[bad_pos] = False
    keep[extras] = False
    return keep, bad_pos, len(extras)


def conflict_table(acc: dict[str, np.ndarray], pos: np.ndarray, tables: Tables) -> pd.DataFrame:
    """Raw-table columns for the conflicting readings at ``pos`` (canonical units)."""
    q = pd.DataFrame({
        "row": acc["row"][pos],
        "sensor": tables.sensors[acc["sensor"][pos]],
        "variable": np.asarray(tables.variables, dtype=object)[acc["var"][pos]],
        "time": tables.times[acc["time"][pos]].astype("datetime64[ns]"),
        "value": acc["value"][pos],
    })
    keys = ["sensor", "variable", "time"]
    q = q.sort_values(keys + ["row"])
    vals = q.groupby(keys, sort=False)["value"].transform(lambda x: ", ".join(f"{y:.6g}" for y in x))
    return pd.DataFrame({
        "row": q["row"].astype("int64"),
        "sensor": q["sensor"],
        "time": q["time"].dt.strftime("%Y-%m-%dT%H:%M:%S"),
        "variable": q["variable"],
        "value": q["value"].map(lambda y: f"{y:.17g}"),
        "unit": q["variable"].map(lambda x: registry.variable(x)["units"]),
        "detail": "conflicting values: " + vals,
    })


def _pairs(acc: dict[str, np.ndarray], idx: np.ndarray | None, keep: np.ndarray | None, system: int,
           first: dict[int, int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sensor code, site code, position)`` of the first kept reading of each (sensor, site)
    pair of one system: from the table kept while reading, or by hashing all its readings."""
    if first is not None:
        keys = np.array([k for k in first if (k >> 56) == system], dtype=np.int64)
        pos = np.array([first[k] for k in keys.tolist()], dtype=np.int64)
        if keep is None or keep[pos].all():
            return (keys >> 28) & (2**28 - 1), (keys & (2**28 - 1)) - 1, pos
    take = (lambda a: a) if idx is None else (lambda a: a[idx])
    s, site = take(acc["sensor"]).astype(np.int64), take(acc["site"]).astype(np.int64)
    at = np.flatnonzero(~pd.Series((s << 28) | (site + 1)).duplicated().to_numpy())
    return s[at], site[at], at


def _first_per_sensor(s: np.ndarray, site: np.ndarray, pos: np.ndarray, ok_site: np.ndarray, n_sensors: int) -> np.ndarray:
    """Per local sensor, the site of its first reading whose site has the attribute (-1: none)."""
    out = np.full(n_sensors, -1, dtype=np.int64)
    has = (site >= 0) & ok_site[np.maximum(site, 0)] if len(ok_site) else np.zeros(len(site), bool)
    s, st, pos = s[has], site[has], pos[has]
    if not len(s):
        return out
    order = np.lexsort((pos, s))  # by sensor, then by position of the reading
    s, st = s[order], st[order]
    head = np.r_[True, s[1:] != s[:-1]]
    out[s[head]] = st[head]
    return out


def build_tree(acc: dict[str, np.ndarray], tables: Tables, keep: np.ndarray | None, *,
               first: dict[int, int] | None = None, history: str = "") -> xr.DataTree:
    """The cube: one ``(sensor, time)`` node per system, canonical units and CF attributes.

    ``first``: :attr:`Accepted.first` (``None``: work the coordinates out from all readings).
    """
    nodes: dict[str, xr.Dataset] = {}
    for system, idx in _system_groups(acc, tables, keep):
        take = (lambda a: a) if idx is None else (lambda a, idx=idx: a[idx])
        s, t, v = take(acc["sensor"]), take(acc["time"]), take(acc["var"])
        ps = np.flatnonzero(np.bincount(s, minlength=len(tables.sensors)))
        order = sorted(range(len(ps)), key=lambda i: str(tables.sensors[ps[i]]))
        sensors = np.array([tables.sensors[ps[i]] for i in order], dtype=object)
        ls_of = np.full(len(tables.sensors), -1, dtype=np.int64)
        ls_of[ps[order]] = np.arange(len(ps))
        pt = np.flatnonzero(np.bincount(t, minlength=len(tables.times)))
        tsort = np.argsort(tables.times[pt], kind="stable")
        times = tables.times[pt[tsort]].astype("datetime64[ns]")
        lt_of = np.full(len(tables.times), -1, dtype=np.int32 if len(pt) < 2**31 else np.int64)
        lt_of[pt[tsort]] = np.arange(len(pt))
        flat = ls_of[s]  # flat cell index (int64), built in place
        flat *= len(times)
        flat += lt_of[t]
        values = take(acc["value"])
        data_vars = {}
        var_codes = set(np.unique(v).tolist())
        for name in registry.variables_of(system):
            if name not in tables.variables or tables.variables.index(name) not in var_codes:
                continue
            arr = np.full((len(sensors), len(times)), np.nan)
            if len(var_codes) == 1:
                arr.ravel()[flat] = values
            else:
                m = v == tables.variables.index(name)
                arr.ravel()[flat[m]] = values[m]
            entry = registry.variable(name)
            attrs = {"units": entry["units"], "long_name": entry["long_name"], "system": system}
            if entry.get("standard_name"):
                attrs["standard_name"] = entry["standard_name"]
            data_vars[name] = (("sensor", "time"), arr, attrs)
        del flat
        ps_code, site, pos = _pairs(acc, idx, keep, registry.SYSTEMS.index(system), first)
        ls = ls_of[ps_code]
        keep_pair = ls >= 0
        ls, site, pos = ls[keep_pair], site[keep_pair], pos[keep_pair]
        lat = np.full(len(sensors), np.nan)
        lon = np.full(len(sensors), np.nan)
        zone = np.full(len(sensors), "", dtype=object)
        for src, ok_site, target in ((tables.site_lat, ~np.isnan(tables.site_lat), lat),
                                     (tables.site_lon, ~np.isnan(tables.site_lon), lon),
                                     (tables.site_zone, np.array([z is not None for z in tables.site_zone], dtype=bool), zone)):
            got = _first_per_sensor(ls, site, pos, ok_site, len(sensors))
            has = got >= 0
            target[has] = [str(x) for x in src[got[has]]] if target is zone else src[got[has]]
        coords = {
            "sensor": ("sensor", sensors),
            "time": ("time", times),
            "lat": ("sensor", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("sensor", lon, {"standard_name": "longitude", "units": "degrees_east"}),
            "zone": ("sensor", zone, {"long_name": "zone"}),
        }
        nodes[f"/{system}"] = xr.Dataset(data_vars, coords=coords)
    tree = xr.DataTree.from_dict(nodes) if nodes else xr.DataTree()
    if history:
        tree.attrs["history"] = history
    return tree


def assemble(acc: pd.DataFrame, *, history: str = "") -> xr.DataTree:
    """Accepted, de-duplicated rows (``sensor, variable, time, value`` in canonical units,
    optional ``lat, lon, zone``) -> one ``(sensor, time)`` node per system."""
    n = len(acc)
    s_codes, sensors = pd.factorize(pd.Series(acc["sensor"], dtype=object) if n else pd.Series([], dtype=object))
    variables = list(dict.fromkeys(acc["variable"])) if n else []
    v_codes = pd.Series(acc["variable"]).map({x: i for i, x in enumerate(variables)}).to_numpy(dtype="int16") if n else np.zeros(0, "int16")
    t_codes, times = pd.factorize(pd.Series(acc["time"]).to_numpy(dtype="datetime64[ns]").view("int64")) if n else (np.zeros(0, "int64"), np.zeros(0, "int64"))
    site_cols = pd.DataFrame({
        "lat": pd.to_numeric(acc["lat"], errors="coerce") if "lat" in acc else np.nan,
        "lon": pd.to_numeric(acc["lon"], errors="coerce") if "lon" in acc else np.nan,
        "zone": acc["zone"].astype(object).where(acc["zone"].notna(), None) if "zone" in acc else None,
    }, index=acc.index)
    site = site_cols.groupby(["lat", "lon", "zone"], dropna=False, sort=False).ngroup().to_numpy() if n else np.zeros(0, "int64")
    first = site_cols.groupby(site, sort=True).first() if n else site_cols.iloc[0:0]
    zones = site_cols["zone"].groupby(site, sort=True).first() if n else pd.Series([], dtype=object)
    tables = Tables(
        sensors=np.asarray(sensors, dtype=object), times=np.asarray(times, dtype="int64"), variables=variables,
        site_lat=first["lat"].to_numpy(dtype="float64"), site_lon=first["lon"].to_numpy(dtype="float64"),
        site_zone=np.array([None if (z is None or (isinstance(z, float) and np.isnan(z)) or z is pd.NA) else z for z in zones], dtype=object),
    )
    cols: dict[str, Any] = {"row": np.arange(n), "sensor": s_codes, "var": v_codes, "time": t_codes,
                            "value": pd.Series(acc["value"]).to_numpy(dtype="float64") if n else np.zeros(0), "site": site}
    store = Accepted()
    var_sys = np.array([registry.SYSTEMS.index(registry.system_of(x)) for x in variables] or [0], dtype=np.int64)
    store.append(system=var_sys[v_codes], **cols)
    return build_tree(store.columns(), tables, None, first=store.first, history=history)
