"""NGSI-LD entities (and NGSIv2 look-alikes) as observations, and the way back.

Understood: one entity, a list of entities, or a notification (``{"data": [...]}``), in any
of the representations brokers serve:

- **normalized**: ``{"type": "Property", "value": 69, "unitCode": "GQ", "observedAt": ...}``;
- **keyValues** (concise): ``"no2": 69``;
- **temporal** (Mintaka, Stellio ``/temporal/entities``): an attribute is a *list* of
  instances, each with ``value`` and ``observedAt``;
- **temporalValues** (simplified temporal): ``{"type": "Property", "values": [[v, t], ...]}``;
- NGSIv2 normalized: ``{"type": "Number", "value": 69, "metadata": {"unitCode": {"value":
  "GQ"}}}``; attribute names written as full IRIs keep their last segment.

One record is one attribute instance of an entity that is not metadata: the entity ``id``,
``type``, ``@context``, GeoProperties and locations, Relationships and ``ref*`` attributes,
``zone``, and the descriptive attributes in :data:`METADATA` are not records. Text-valued
properties are records (and usually end quarantined as unknown variables): nothing is
silently dropped. Temporal *aggregations* (``min``/``max``/``avg`` arrays) are summaries, not
observations, and are skipped.

Sensor id: the entity ``id``. Time: the instance's ``observedAt``, else the entity's
``dateObserved`` (an interval gives its start; ``{"@type": "DateTime", "@value": ...}`` is
unwrapped), else the notification's ``notifiedAt``. Times without an offset are UTC unless
``naive_tz`` says otherwise. Units: ``unitCode`` (UN/CEFACT common codes, see
:data:`workbench.units.UNECE_CODES`); a property without one is taken as already canonical.

Examples
--------
>>> cube, report = read_ngsild("datasets/fixtures/ngsild_temporal.json")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.io._build import Collector
from workbench.io._source import bytes_sha256, load_json, open_source_error
from workbench.io.report import IngestReport, ReadError
from workbench.units import UNECE_CODES

__all__ = ["METADATA", "read_ngsild", "ngsild_rows", "to_ngsild"]

#: descriptive attributes that are not observations
METADATA = frozenset(
    {
        "id", "type", "@context", "location", "address", "name", "description", "source", "dataProvider",
        "areaServed", "dateObserved", "dateObservedFrom", "dateObservedTo", "dateCreated", "dateModified",
        "TimeInstant", "typeOfLocation", "seeAlso", "owner", "alternateName", "zone", "createdAt",
        "modifiedAt", "observedAt", "scope", "category", "controlledProperty",
    }
)
_GEO_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon", "geo:json", "geo:point"}
_UNIT_TO_CODE = {}
for _code, _unit in UNECE_CODES.items():
    _UNIT_TO_CODE.setdefault(_unit, _code)


def _unwrap_time(v: Any) -> Any:
    if isinstance(v, Mapping):
        v = v.get("@value", v.get("value"))
    return v if v is None or isinstance(v, str) else str(v)


def _name(attr: str) -> str:
    return attr.rsplit("#", 1)[-1].rsplit("/", 1)[-1] if attr.startswith(("http://", "https://")) else attr


def _latlon(loc: Any) -> tuple[Any, Any]:
    if isinstance(loc, list):
        loc = loc[0] if loc else None
    if isinstance(loc, Mapping) and "value" in loc:
        loc = loc["value"]
    if isinstance(loc, str) and "," in loc:  # NGSIv2 geo:point "lat, lon"
        parts = loc.split(",")
        return parts[0].strip(), parts[1].strip()
    if not isinstance(loc, Mapping):
        return None, None
    c = loc.get("coordinates")
    if loc.get("type") == "Point" and isinstance(c, list) and len(c) >= 2:
        return c[1], c[0]
    try:
        pts = np.asarray(c, dtype="float64").reshape(-1, np.asarray(c).shape[-1])
        return float(pts[:, 1].mean()), float(pts[:, 0].mean())
    except (TypeError, ValueError, IndexError):
        return None, None


def _is_observation(attr: str, val: Any) -> bool:
    if attr in METADATA or _name(attr) in METADATA or _name(attr).startswith("ref"):
        return False
    first = val[0] if isinstance(val, list) and val else val
    if isinstance(first, Mapping):
        kind = first.get("type")
        if kind in ("Relationship", "GeoProperty", "LanguageProperty") or kind in _GEO_TYPES:
            return False
        if "object" in first:
            return False
        if any(k in first for k in ("min", "max", "avg", "sum", "totalCount", "distinctCount", "stddev", "sumsq")) and "values" not in first and "value" not in first:
            return False  # temporal aggregation
        if "value" not in first and "values" not in first:
            return False  # a structured keyValues value (an address, a JSON object)
        inner = first.get("value")
        return not (isinstance(inner, Mapping) and ("coordinates" in inner or "@value" not in inner))
    if isinstance(val, list):
        return False  # a keyValues array value
    return True


def _unit_of(inst: Mapping[str, Any]) -> Any:
    code = inst.get("unitCode")
    meta = inst.get("metadata") if isinstance(inst.get("metadata"), Mapping) else {}
    if code is None and "unitCode" in meta:
        code = meta["unitCode"].get("value") if isinstance(meta["unitCode"], Mapping) else meta["unitCode"]
    return code if code is None or isinstance(code, str) else str(code)


def _observed_at(inst: Mapping[str, Any]) -> Any:
    if "observedAt" in inst:
        return _unwrap_time(inst["observedAt"])
    meta = inst.get("metadata") if isinstance(inst.get("metadata"), Mapping) else {}
    for key in ("observedAt", "TimeInstant", "dateObserved"):
        if key in meta:
            return _unwrap_time(meta[key])
    return None


def _value(v: Any) -> Any:
    if isinstance(v, Mapping) and "@value" in v:
        v = v["@value"]
    return v if v is None or isinstance(v, (int, float, str)) else json.dumps(v)


def _entity(rows: list[dict[str, Any]], bad: list[str], e: Any, notified_at: Any) -> None:
    if not isinstance(e, Mapping):
        bad.append(f"not an NGSI-LD entity: {str(e)[:60]}")
        return
    sensor = e.get("id")
    sensor = None if sensor is None else str(sensor)
    lat, lon = _latlon(e.get("location"))
    zone = e.get("zone")
    zone = _value(zone.get("value")) if isinstance(zone, Mapping) else _value(zone)
    entity_time = e.get("dateObserved")
    entity_time = _unwrap_time(entity_time.get("value") if isinstance(entity_time, Mapping) and "type" in entity_time else entity_time)
    entity_time = entity_time or _unwrap_time(notified_at)
    base = {"sensor": sensor, "lat": lat, "lon": lon, "zone": zone}
    for attr, val in e.items():
        if not _is_observation(attr, val):
            continue
        label = _name(attr)
        instances = val if isinstance(val, list) else [val]
        for inst in instances:
            if not isinstance(inst, Mapping):
                rows.append({**base, "variable": label, "time": entity_time, "value": _value(inst), "unit": None})
            elif "values" in inst:
                unit = _unit_of(inst)
                pairs = inst["values"] if isinstance(inst["values"], list) else [inst["values"]]
                for pair in pairs:
                    if isinstance(pair, list) and len(pair) >= 2:
                        rows.append({**base, "variable": label, "time": _unwrap_time(pair[1]), "value": _value(pair[0]), "unit": unit})
                    else:
                        rows.append({**base, "variable": label, "time": None, "value": _value(pair), "unit": unit})
            else:
                t = _observed_at(inst) or entity_time
                rows.append({**base, "variable": label, "time": t, "value": _value(inst.get("value")), "unit": _unit_of(inst)})


def ngsild_rows(payloads: Iterable[Any]) -> tuple[pd.DataFrame, list[str]]:
    """Long rows from parsed NGSI-LD payloads, and descriptions of malformed entities."""
    rows: list[dict[str, Any]] = []
    bad: list[str] = []
    for payload in payloads:
        if isinstance(payload, Mapping) and isinstance(payload.get("data"), list):
            for e in payload["data"]:
                _entity(rows, bad, e, payload.get("notifiedAt"))
        elif isinstance(payload, list):
            for e in payload:
                _entity(rows, bad, e, None)
        else:
            _entity(rows, bad, payload, None)
    cols = ("sensor", "time", "variable", "value", "unit", "lat", "lon", "zone")
    frame = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=object) for c in cols})
    frame.insert(0, "row", np.arange(1, len(rows) + 1, dtype="int64"))
    return frame, bad


def read_ngsild(
    source: str | Path | Mapping[str, Any] | list[Any],
    *,
    variables: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    naive_tz: str = "UTC",
) -> tuple[xr.DataTree, IngestReport]:
    """Read NGSI-LD (or NGSIv2) entities from a ``.json``/``.jsonld`` file or a parsed payload.

    Parameters
    ----------
    source
        Path, or an already parsed entity, list of entities or notification.
    variables, units, naive_tz
        See :class:`workbench.io._build.Collector`; keys are attribute names.

    Returns
    -------
    (DataTree, IngestReport)
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        open_source_error(path)
        data = path.read_bytes()
        payload = load_json(data, source=str(path), what="NGSI-LD entities")
        name = str(path)
    else:
        payload, name = source, "<payload>"
        data = json.dumps(source, sort_keys=True, default=str).encode()
    if not isinstance(payload, (Mapping, list)):
        raise ReadError(f"{name}: expected an NGSI-LD entity, a list of entities or a notification, got a JSON {type(payload).__name__}.")
    rows, bad = ngsild_rows([payload])
    collector = Collector(source=name, sha256=bytes_sha256(data), format="ngsi-ld", variables=variables, units=units, naive_tz=naive_tz)
    collector.add_records(rows, bad, what="an NGSI-LD entity")
    return collector.finish()


def to_ngsild(tree: xr.DataTree, *, representation: str = "temporal", entity_type: str = "Device") -> list[dict[str, Any]]:
    """The cube as NGSI-LD entities, one per sensor, in the temporal representation.

    ``representation="temporal"`` writes each variable as a list of Property instances with
    ``value``, ``observedAt`` and (where one exists) ``unitCode``; ``"temporalValues"``
    writes ``{"type": "Property", "values": [[v, t], ...]}`` with ``unitCode`` beside it.
    Reading the result with :func:`read_ngsild` gives back the same cube.
    """
    from workbench.io.longform import to_long

    if representation not in ("temporal", "temporalValues"):
        raise ValueError(f"representation must be 'temporal' or 'temporalValues', got {representation!r}.")
    long = to_long(tree)
    entities: dict[str, dict[str, Any]] = {}
    for (sensor, var), g in long.groupby(["sensor", "variable"], sort=True):
        first = g.iloc[0]
        ent = entities.setdefault(str(sensor), {"id": str(sensor), "type": entity_type})
        if np.isfinite(first["lat"]) and np.isfinite(first["lon"]):
            ent["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [float(first["lon"]), float(first["lat"])]}}
        if first["zone"]:
            ent["zone"] = {"type": "Property", "value": str(first["zone"])}
        times = pd.DatetimeIndex(g["time"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        code = _UNIT_TO_CODE.get(str(first["unit"]))
        extra = {"unitCode": code} if code else {}
        if representation == "temporal":
            ent[str(var)] = [{"type": "Property", "value": float(v), "observedAt": t, **extra} for t, v in zip(times, g["value"])]
        else:
            ent[str(var)] = {"type": "Property", "values": [[float(v), t] for t, v in zip(times, g["value"])], **extra}
    return list(entities.values())
