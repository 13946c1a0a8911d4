"""Open311 GeoReport v2 service requests, counted per zone and hour.

Citizens' reports are point events (``requested_datetime``, ``lat``/``long``,
``service_name``). Each request is one record; accepted requests are counted per zone and
UTC hour into the ``services`` system, variable ``service_requests`` (unit ``1/h``), one
"sensor" per zone (its id is the zone id). Every zone × every hour from the first to the
last request is filled: an hour without requests counts 0, not missing.

Zones come from ``zones=``: a GeoJSON FeatureCollection (dict, JSON text or path) whose
features carry ``properties.zone``, or the city's ``/zones`` node (a DataTree node or Dataset)
whose ``attrs["geojson"]`` holds such a FeatureCollection. A point is assigned with an
even-odd ray-casting test (holes and MultiPolygons work; a point on a shared edge goes to the
first zone listed). Without zones, all requests are counted in one sensor ``"city"``.

Quarantine: ``unparseable_time`` (``requested_datetime``), ``no_zone`` (no location, the
``0``/``0`` placeholder, or outside every zone; only when zones are given), ``malformed_record``.
JSON (a list of requests) and XML (``<service_requests><request>…``) encodings are read.

Examples
--------
>>> cube, report = read_open311("datasets/fixtures/open311_requests.json", zones=geojson)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.io._build import _raw_table, assemble, parse_times, to_float
from workbench.io._source import bytes_sha256, load_json, open_source_error
from workbench.io.report import IngestReport, ReadError, empty_quarantine

__all__ = ["read_open311", "load_zones", "point_in_polygon", "assign_zones", "requests_frame"]

_FIELDS = ("service_request_id", "service_name", "service_code", "requested_datetime", "lat", "long", "status")


def point_in_polygon(lon: np.ndarray, lat: np.ndarray, rings: list[np.ndarray]) -> np.ndarray:
    """Even-odd ray casting: which points lie inside the polygon given by its ``rings``.

    Examples
    --------
    >>> sq = [np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], float)]
    >>> point_in_polygon(np.array([0.5, 2.0]), np.array([0.5, 0.5]), sq).tolist()
    [True, False]
    """
    x, y = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    inside = np.zeros(x.shape, dtype=bool)
    for ring in rings:
        xs, ys = ring[:, 0], ring[:, 1]
        for i in range(len(ring) - 1):
            x0, y0, x1, y1 = xs[i], ys[i], xs[i + 1], ys[i + 1]
            crosses = (y0 > y) != (y1 > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                xc = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (x < xc)
    return inside


def load_zones(zones: Any) -> list[tuple[str, list[list[np.ndarray]]]]:
    """``[(zone id, [polygon rings, ...]), ...]`` from a FeatureCollection or a ``/zones`` node."""
    if isinstance(zones, (xr.DataTree, xr.Dataset)):
        text = zones.attrs.get("geojson")
        if text is None:
            raise ValueError("zones node has no attrs['geojson'] FeatureCollection.")
        zones = text
    if isinstance(zones, Path) or (isinstance(zones, str) and not zones.lstrip().startswith("{")):
        zones = Path(zones).read_text(encoding="utf-8")
    if isinstance(zones, str):
        zones = json.loads(zones)
    if not isinstance(zones, Mapping) or zones.get("type") != "FeatureCollection":
        raise ValueError("zones must be a GeoJSON FeatureCollection (dict, text, path) or a /zones node.")
    out = []
    for k, feat in enumerate(zones.get("features") or []):
        props = feat.get("properties") or {}
        zid = str(props.get("zone", props.get("id", props.get("name", k))))
        geom = feat.get("geometry") or {}
        polys = [geom.get("coordinates")] if geom.get("type") == "Polygon" else geom.get("coordinates") or []
        if geom.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        out.append((zid, [[np.asarray(r, dtype="float64")[:, :2] for r in poly] for poly in polys]))
    return out


def assign_zones(lon: np.ndarray, lat: np.ndarray, zones: list[tuple[str, list[list[np.ndarray]]]]) -> np.ndarray:
    """Zone id per point (``None`` outside every zone)."""
    result = np.full(len(lon), None, dtype=object)
    for zid, polys in zones:
        todo = result == None  # noqa: E711
        if not todo.any():
            break
        hit = np.zeros(len(lon), dtype=bool)
        for rings in polys:
            hit |= point_in_polygon(lon, lat, rings)
        result[todo & hit] = zid
    return result


def _parse(data: bytes, source: str) -> list[Any]:
    head = data.lstrip()[:1]
    if head == b"<" or data.lstrip().startswith(b"\xef\xbb\xbf<"):
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            raise ReadError(f"{source}: not well-formed XML ({exc}); expected GeoReport v2 <service_requests>.") from None
        if root.tag != "service_requests":
            raise ReadError(f"{source}: XML root is <{root.tag}>, expected <service_requests>.")
        return [{child.tag: (child.text or "").strip() for child in req} if req.tag == "request" else req.tag for req in root]
    payload = load_json(data, source=source, what="GeoReport v2 service requests (a JSON list)")
    if isinstance(payload, Mapping) and isinstance(payload.get("service_requests"), list):
        payload = payload["service_requests"]
    if not isinstance(payload, list):
        raise ReadError(f"{source}: expected a JSON list of service requests, got a JSON {type(payload).__name__}.")
    return payload


def requests_frame(records: list[Any]) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per record (GeoReport fields as objects), and a mask of malformed records."""
    ok = np.array([isinstance(r, Mapping) for r in records], dtype=bool)
    cols = {f: pd.Series([r.get(f) if isinstance(r, Mapping) else None for r in records], dtype=object) for f in _FIELDS}
    frame = pd.DataFrame(cols)
    frame.insert(0, "row", np.arange(1, len(records) + 1, dtype="int64"))
    return frame, ~ok


def read_open311(
    source: str | Path | list[Any],
    *,
    zones: Any = None,
    naive_tz: str = "UTC",
) -> tuple[xr.DataTree, IngestReport]:
    """Read GeoReport v2 service requests and count them per zone and hour.

    Parameters
    ----------
    source
        ``requests.json`` / ``requests.xml`` path, or an already parsed list of requests.
    zones
        Zone polygons (see module doc); ``None`` counts city-wide.
    naive_tz
        Time zone of ``requested_datetime`` values written without an offset.

    Returns
    -------
    (DataTree, IngestReport)
    """
    if isinstance(source, list):
        records, name = source, "<payload>"
        digest = bytes_sha256(json.dumps(source, sort_keys=True, default=str).encode())
    else:
        path = Path(source)
        open_source_error(path)
        data = path.read_bytes()
        records, name, digest = _parse(data, str(path)), str(path), bytes_sha256(data)
    frame, malformed = requests_frame(records)
    zone_list = load_zones(zones) if zones is not None else None
    n = len(frame)
    reason = np.full(n, None, dtype=object)
    reason[malformed] = "malformed_record"
    t = parse_times(frame["requested_datetime"], naive_tz=naive_tz)
    reason[(reason == None) & np.isnat(t)] = "unparseable_time"  # noqa: E711
    lat, lon = to_float(frame["lat"]), to_float(frame["long"])
    if zone_list is not None:
        unlocated = np.isnan(lat) | np.isnan(lon) | ((lat == 0) & (lon == 0))
        zone = assign_zones(np.nan_to_num(lon), np.nan_to_num(lat), zone_list)
        zone[unlocated] = None
        reason[(reason == None) & (zone == None)] = "no_zone"  # noqa: E711
        zone_ids = [z for z, _ in zone_list]
    else:
        zone = np.full(n, "city", dtype=object)
        zone_ids = ["city"]
    bad = reason != None  # noqa: E711
    raw = pd.DataFrame(
        {
            "row": frame["row"],
            "sensor": frame["service_request_id"],
            "time": frame["requested_datetime"],
            "variable": frame["service_name"],
            "value": [f"{a}, {b}" for a, b in zip(frame["lat"], frame["long"])],
        }
    )
    quarantined = (
        _raw_table(raw[bad], pd.Series(reason[bad]), "lat, long given in 'value'") if bad.any() else empty_quarantine()
    )
    counts = {r: int((reason == r).sum()) for r in set(reason[bad])}
    good = ~bad
    acc = pd.DataFrame({"zone": zone[good], "time": pd.Series(t[good]).dt.floor("h")})
    if len(acc):
        hours = pd.date_range(acc["time"].min(), acc["time"].max(), freq="h", unit="ns")
        grid = acc.groupby(["zone", "time"]).size().reindex(pd.MultiIndex.from_product([zone_ids, hours], names=["zone", "time"]), fill_value=0)
        centroid = {zid: _centroid(polys) for zid, polys in (zone_list or [])}
        cells = grid.reset_index(name="value")
        long = pd.DataFrame(
            {
                "sensor": cells["zone"].astype(object),
                "variable": "service_requests",
                "time": cells["time"].to_numpy(dtype="datetime64[ns]"),
                "value": cells["value"].to_numpy(dtype="float64"),
                "lat": [centroid.get(z, (np.nan, np.nan))[0] for z in cells["zone"]],
                "lon": [centroid.get(z, (np.nan, np.nan))[1] for z in cells["zone"]],
                "zone": [z if zone_list is not None else "" for z in cells["zone"]],
            }
        )
    else:
        long = pd.DataFrame({"sensor": [], "variable": [], "time": np.array([], "datetime64[ns]"), "value": []})
    tree = assemble(long, history=f"workbench.io: {int(good.sum())} Open311 requests counted per zone and hour")
    if "services" in tree.children:
        tree["services"]["service_requests"].attrs["cell_methods"] = "time: sum (interval: 1 hour)"
    report = IngestReport(
        source=name, sha256=digest, format="open311", n_in=n, n_accepted=int(good.sum()), reasons=counts, quarantined=quarantined
    )
    return tree, report


def _centroid(polys: list[list[np.ndarray]]) -> tuple[float, float]:
    """(lat, lon): the mean of the outer rings' vertices (closing vertex excluded)."""
    pts = np.concatenate([rings[0][:-1] for rings in polys if len(rings) and len(rings[0]) > 1])
    return float(pts[:, 1].mean()), float(pts[:, 0].mean())
