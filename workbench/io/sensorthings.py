"""OGC SensorThings API (STA 1.0/1.1) observations: files, live endpoints, and the way back.

Understood payloads (each a JSON page, or several pages):

- collections ``{"value": [...], "@iot.nextLink": ...}`` of Things (with expanded
  ``Datastreams`` and ``Locations``), of Datastreams (with expanded ``Observations``,
  ``ObservedProperty``, ``Thing``), or of bare Observations; a single Thing or Datastream
  entity; the specification's erratum ``"values"`` for ``"value"``;
- FROST's ``$resultFormat=GeoJSON`` (one Feature per Datastream, slash-path keys such as
  ``Observations/0/result``; sensor ``Thing/name``);
- FROST's ``$resultFormat=dataArray`` (``components`` + ``dataArray``, for Datastreams and
  MultiDatastreams), and the 52°North quirk of several objects joined by commas without an
  enclosing array (read leniently as a list).

One record is one Observation (one element of a MultiDatastream result). The sensor id is the
Thing's ``@iot.id`` when the Thing is known, else the Datastream's; the variable label is the
ObservedProperty's name, else the Datastream's name, else ``Datastreams(<id>)`` (map it with
``variables=``); the unit is ``unitOfMeasurement.symbol`` (else ``name``). An interval
``phenomenonTime`` ``start/end`` is labelled by its start. Location: the Thing's first
Location ``Point``; zone: ``Thing.properties.zone``.

:func:`fetch_sensorthings` follows ``@iot.nextLink`` (top level and
``Observations@iot.nextLink`` inside expanded Datastreams) over HTTP with ``requests``; in
files, nested nextLinks are not followed (the records they point to were not read).

Examples
--------
>>> cube, report = read_sensorthings("datasets/fixtures/sensorthings_things_expand.json")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import numpy as np
import pandas as pd
import xarray as xr

from workbench.io._build import Collector
from workbench.io._source import bytes_sha256, load_json, open_source_error
from workbench.io.report import IngestReport, ReadError

__all__ = ["read_sensorthings", "fetch_sensorthings", "to_sensorthings", "sensorthings_rows"]

_DS_ID = re.compile(r"(Multi)?Datastreams\(([^)]+)\)")


def _load(data: bytes, source: str) -> Any:
    return load_json(data, source=source, what="a SensorThings response", comma_joined=True)


def _id(entity: Mapping[str, Any]) -> str | None:
    v = entity.get("@iot.id")
    return None if v is None else str(v)


def _point(thing: Mapping[str, Any]) -> tuple[Any, Any]:
    for loc in thing.get("Locations") or []:
        geo = loc.get("location") if isinstance(loc, Mapping) else None
        if isinstance(geo, Mapping) and geo.get("type") == "Feature":
            geo = geo.get("geometry")
        if isinstance(geo, Mapping) and geo.get("type") == "Point":
            c = geo.get("coordinates") or []
            if isinstance(c, list) and len(c) >= 2:
                return c[1], c[0]
    return None, None


class _Rows:
    """Accumulates raw record fields while walking a payload."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {k: [] for k in ("sensor", "time", "variable", "value", "unit", "lat", "lon", "zone")}
        self.bad: list[str] = []

    def add(self, **kw: Any) -> None:
        for k, col in self.cols.items():
            col.append(kw.get(k))

    def frame(self, first_row: int) -> pd.DataFrame:
        n = len(self.cols["sensor"])
        df = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in self.cols.items()})
        df.insert(0, "row", np.arange(first_row, first_row + n, dtype="int64"))
        return df


def _scalar(v: Any) -> Any:
    return v if v is None or isinstance(v, (int, float, str)) else json.dumps(v)


def _observations(out: _Rows, obs_list: Any, meta: Mapping[str, Any]) -> None:
    if not isinstance(obs_list, list):
        out.bad.append(f"Observations of {meta.get('variable')!r} is not a list")
        return
    for obs in obs_list:
        if not isinstance(obs, Mapping):
            out.bad.append(f"an Observation is not an object: {str(obs)[:60]}")
            continue
        t = obs.get("phenomenonTime") or obs.get("resultTime")
        result = obs.get("result")
        out.add(**meta, time=_scalar(t), value=_scalar(result))


def _datastream(out: _Rows, ds: Mapping[str, Any], thing: Mapping[str, Any] | None) -> None:
    thing = thing or (ds.get("Thing") if isinstance(ds.get("Thing"), Mapping) else None)
    op = ds.get("ObservedProperty") if isinstance(ds.get("ObservedProperty"), Mapping) else {}
    uom = ds.get("unitOfMeasurement") if isinstance(ds.get("unitOfMeasurement"), Mapping) else {}
    sensor = (_id(thing) if thing else None) or _id(ds)
    label = op.get("name") or ds.get("name") or ds.get("description") or (f"Datastreams({_id(ds)})" if _id(ds) else None)
    lat, lon = _point(thing) if thing else (None, None)
    props = thing.get("properties") if thing and isinstance(thing.get("properties"), Mapping) else {}
    meta = {
        "sensor": sensor,
        "variable": _scalar(label),
        "unit": _scalar(uom.get("symbol") or uom.get("name")),
        "lat": lat,
        "lon": lon,
        "zone": _scalar(props.get("zone")),
    }
    if "Observations" in ds:
        _observations(out, ds["Observations"], meta)


def _data_array(out: _Rows, block: Mapping[str, Any]) -> None:
    link = block.get("Datastream@iot.navigationLink") or block.get("MultiDatastream@iot.navigationLink") or ""
    m = _DS_ID.search(str(link))
    ds_id = m.group(2) if m else None
    comps = block.get("components") or []
    rows = block.get("dataArray") or []
    if not isinstance(comps, list) or not isinstance(rows, list):
        out.bad.append("dataArray block without a components list")
        return
    idx = {c: i for i, c in enumerate(comps)}
    ti = idx.get("phenomenonTime", idx.get("resultTime"))
    ri = idx.get("result")
    for r in rows:
        if not isinstance(r, list) or ti is None or ri is None or len(r) <= max(ti, ri):
            out.bad.append(f"dataArray row does not match components {comps}: {str(r)[:60]}")
            continue
        result = r[ri]
        label = f"{'MultiDatastreams' if m and m.group(1) else 'Datastreams'}({ds_id})"
        if isinstance(result, list):  # MultiDatastream: one record per element
            for k, v in enumerate(result):
                out.add(sensor=ds_id, time=_scalar(r[ti]), variable=f"{label}[{k}]", value=_scalar(v))
        else:
            out.add(sensor=ds_id, time=_scalar(r[ti]), variable=label, value=_scalar(result))


def _geojson_feature(out: _Rows, f: Any) -> None:
    """FROST ``$resultFormat=GeoJSON``: a Datastream flattened into slash-path properties."""
    props = f.get("properties") if isinstance(f, Mapping) else None
    if not isinstance(props, Mapping):
        out.bad.append(f"GeoJSON feature without properties: {str(f)[:60]}")
        return
    geom = f.get("geometry") if isinstance(f.get("geometry"), Mapping) else {}
    c = geom.get("coordinates") if geom.get("type") == "Point" else None
    lat, lon = (c[1], c[0]) if isinstance(c, list) and len(c) >= 2 else (None, None)
    meta = {
        "sensor": _scalar(props.get("Thing/name") or props.get("Thing/@iot.id") or props.get("name")),
        "variable": _scalar(props.get("ObservedProperty/name") or props.get("name")),
        "unit": _scalar(props.get("unitOfMeasurement/symbol") or props.get("unitOfMeasurement/name")),
        "lat": lat,
        "lon": lon,
        "zone": _scalar(props.get("Thing/properties/zone")),
    }
    k = 0
    while f"Observations/{k}/result" in props or f"Observations/{k}/phenomenonTime" in props:
        out.add(**meta, time=_scalar(props.get(f"Observations/{k}/phenomenonTime")),
                value=_scalar(props.get(f"Observations/{k}/result")))
        k += 1


def _walk(out: _Rows, payload: Any) -> None:
    if isinstance(payload, list):
        for item in payload:
            _walk(out, item)
        return
    if not isinstance(payload, Mapping):
        out.bad.append(f"not a SensorThings object: {str(payload)[:60]}")
        return
    coll = payload.get("value", payload.get("values"))
    if isinstance(coll, list) and not {"result", "phenomenonTime"} & set(payload):
        for item in coll:
            _entity(out, item)
        return
    _entity(out, payload)


def _entity(out: _Rows, e: Any) -> None:
    if not isinstance(e, Mapping):
        out.bad.append(f"not a SensorThings entity: {str(e)[:60]}")
    elif "dataArray" in e:
        _data_array(out, e)
    elif e.get("type") == "FeatureCollection":
        for feature in e.get("features") or []:
            _geojson_feature(out, feature)
    elif "Datastreams" in e:  # a Thing
        dss = e["Datastreams"]
        for ds in dss if isinstance(dss, list) else [dss]:
            if isinstance(ds, Mapping):
                _datastream(out, ds, e)
            else:
                out.bad.append(f"a Datastream is not an object: {str(ds)[:60]}")
    elif "Observations" in e or "unitOfMeasurement" in e:  # a Datastream
        _datastream(out, e, None)
    elif "result" in e or "phenomenonTime" in e:  # a bare Observation
        m = _DS_ID.search(str(e.get("Datastream@iot.navigationLink", "")))
        ds_id = m.group(2) if m else None
        out.add(sensor=ds_id, variable=f"Datastreams({ds_id})" if ds_id else None,
                time=_scalar(e.get("phenomenonTime") or e.get("resultTime")), value=_scalar(e.get("result")))
    # other entities (Locations, Sensors, ...) carry no observations


def sensorthings_rows(pages: Iterable[Any]) -> tuple[pd.DataFrame, list[str]]:
    """Long rows from parsed SensorThings pages, and descriptions of malformed records."""
    out = _Rows()
    for page in pages:
        _walk(out, page)
    return out.frame(1), out.bad


def _finish(pages: list[Any], *, source: str, sha256: str, fmt: str, **kw: Any) -> tuple[xr.DataTree, IngestReport]:
    rows, bad = sensorthings_rows(pages)
    collector = Collector(source=source, sha256=sha256, format=fmt, **kw)
    collector.add_records(rows, bad, what="a SensorThings observation")
    return collector.finish()


def read_sensorthings(
    source: str | Path | Mapping[str, Any] | list[Any] | Iterable[str | Path],
    *,
    variables: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    naive_tz: str = "UTC",
    timeout: float = 30.0,
    max_pages: int = 10_000,
) -> tuple[xr.DataTree, IngestReport]:
    """Read SensorThings observations from a file, several page files, a parsed payload or a URL.

    Parameters
    ----------
    source
        A JSON file, a list of page files, an already parsed payload (dict or list), or an
        ``http(s)://`` URL (then :func:`fetch_sensorthings` pages through it).
    variables, units, naive_tz
        See :class:`workbench.io._build.Collector`; keys are the labels described above.
    timeout, max_pages
        For URLs: seconds per request, and a bound on pages followed.

    Returns
    -------
    (DataTree, IngestReport)
    """
    kw = {"variables": variables, "units": units, "naive_tz": naive_tz}
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        pages, digest = fetch_sensorthings(source, timeout=timeout, max_pages=max_pages)
        return _finish(pages, source=source, sha256=digest, fmt="sensorthings-http", **kw)
    if isinstance(source, Mapping) or (isinstance(source, list) and not all(isinstance(p, (str, Path)) for p in source)):
        data = json.dumps(source, sort_keys=True, default=str).encode()
        return _finish([source], source="<payload>", sha256=bytes_sha256(data), fmt="sensorthings", **kw)
    paths = [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]
    pages, digest = [], []
    for path in paths:
        open_source_error(path)
        data = path.read_bytes()
        digest.append(bytes_sha256(data))
        pages.append(_load(data, str(path)))
    sha = digest[0] if len(digest) == 1 else bytes_sha256("".join(digest).encode())
    return _finish(pages, source=", ".join(map(str, paths)), sha256=sha, fmt="sensorthings", **kw)


def fetch_sensorthings(url: str, *, timeout: float = 30.0, max_pages: int = 10_000) -> tuple[list[Any], str]:
    """GET ``url`` and every page its ``@iot.nextLink``\\ s point to.

    Nested ``Observations@iot.nextLink`` pages are fetched and appended to their Datastream.
    Returns the pages and a SHA-256 over all response bodies, in order. Raises
    :class:`ReadError` for a network error, an HTTP error status or a non-JSON body.
    """
    import requests

    session = requests.Session()
    digest: list[str] = []
    count = 0

    def get(link: str) -> Any:
        nonlocal count
        count += 1
        if count > max_pages:
            raise ReadError(f"{url}: more than max_pages={max_pages} pages; raise max_pages or narrow the query.")
        try:
            resp = session.get(link, timeout=timeout, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise ReadError(f"{link}: request failed ({type(exc).__name__}: {exc}).") from None
        if resp.status_code != 200:
            raise ReadError(f"{link}: HTTP {resp.status_code} {resp.reason}; expected 200 with SensorThings JSON.")
        digest.append(bytes_sha256(resp.content))
        return _load(resp.content, link)

    pages: list[Any] = []
    link: str | None = url
    while link:
        page = get(link)
        for item in page.get("value", []) if isinstance(page, Mapping) else []:
            for ds in _datastreams_of(item):
                nxt = ds.get("Observations@iot.nextLink")
                while isinstance(nxt, str) and nxt:
                    sub = get(urljoin(link, nxt))
                    extra = sub.get("value", []) if isinstance(sub, Mapping) else []
                    ds["Observations"] = list(ds.get("Observations") or []) + list(extra)
                    nxt = sub.get("@iot.nextLink") if isinstance(sub, Mapping) else None
                ds.pop("Observations@iot.nextLink", None)
        pages.append(page)
        nxt_top = page.get("@iot.nextLink") if isinstance(page, Mapping) else None
        link = urljoin(link, nxt_top) if isinstance(nxt_top, str) and nxt_top else None
    return pages, bytes_sha256("".join(digest).encode())


def _datastreams_of(item: Any) -> list[dict[str, Any]]:
    if not isinstance(item, dict):
        return []
    if isinstance(item.get("Datastreams"), list):
        return [d for d in item["Datastreams"] if isinstance(d, dict)]
    return [item] if "Observations" in item else []


def to_sensorthings(tree: xr.DataTree) -> dict[str, Any]:
    """The cube as a ``Things?$expand=Locations,Datastreams($expand=ObservedProperty,Observations)`` page.

    One Thing per sensor (``@iot.id`` = sensor id, ``properties.zone``), one Datastream per
    (sensor, variable) with ``unitOfMeasurement.symbol`` = the variable's units, one
    Observation per non-missing value with ``phenomenonTime`` in UTC (``Z``). Reading the
    result with :func:`read_sensorthings` gives back the same cube.
    """
    from workbench.io.longform import to_long

    long = to_long(tree)
    things: dict[str, dict[str, Any]] = {}
    for (sensor, var), g in long.groupby(["sensor", "variable"], sort=True):
        first = g.iloc[0]
        thing = things.setdefault(
            str(sensor),
            {
                "@iot.id": str(sensor),
                "name": str(sensor),
                "properties": {"zone": str(first["zone"])} if first["zone"] else {},
                "Locations": (
                    [{"@iot.id": f"{sensor}-loc", "encodingType": "application/geo+json",
                      "location": {"type": "Point", "coordinates": [float(first["lon"]), float(first["lat"])]}}]
                    if np.isfinite(first["lat"]) and np.isfinite(first["lon"])
                    else []
                ),
                "Datastreams": [],
            },
        )
        times = pd.DatetimeIndex(g["time"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        thing["Datastreams"].append(
            {
                "@iot.id": f"{sensor}/{var}",
                "name": f"{var} at {sensor}",
                "unitOfMeasurement": {"name": str(first["unit"]), "symbol": str(first["unit"]), "definition": ""},
                "ObservedProperty": {"name": str(var)},
                "Observations": [{"phenomenonTime": t, "result": float(v)} for t, v in zip(times, g["value"])],
            }
        )
    return {"value": list(things.values())}
