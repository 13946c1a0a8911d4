"""Alerts out: OASIS CAP 1.2 XML and Smart Data Models ``Alert`` JSON.

CAP (Common Alerting Protocol 1.2) is what public warning systems ingest; each alert row of
:func:`workbench.integration.respond` becomes one ``<alert>`` document with one ``<info>``
(event, category, urgency, severity, certainty, response type, instruction = the recommended
action, the routed domain and the incident as ``<parameter>``\\ s) and an ``<area>`` whose
polygon is the district boundary from ``/zones`` ``attrs["geojson"]``. The tests validate the
output against the OASIS CAP 1.2 schema.

Smart Data Models ``Alert`` (FIWARE, NGSI v2 key-values) is what city platforms store; SDM's
category list has no utility class, so outages use ``security`` and leaks ``environment``
(chosen per rule in ``rules.yml``); the workbench's own kind and domain go in ``data``.

Examples
--------
>>> import pandas as pd
>>> from workbench.integration.rules import respond
>>> t = pd.Timestamp("2026-07-06 03:00")
>>> inc = pd.DataFrame([{"kind": "power_outage", "zone": "Z01", "start": t, "end": t + pd.Timedelta("1h"),
...                      "severity": 0.95, "confidence": 0.9, "evidence": "[]"}])
>>> xml = to_cap(respond(None, inc))[0][1]
>>> xml.startswith(b"<?xml")
True
>>> to_sdm(respond(None, inc))[0]["type"]
'Alert'
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from lxml import etree

__all__ = ["CAP_NS", "to_cap", "to_sdm", "write_alerts", "zone_polygons"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_SDM_SEVERITY = {"Extreme": "critical", "Severe": "high", "Moderate": "medium", "Minor": "low", "Unknown": "informational"}


def zone_polygons(geojson: str | dict | None) -> dict[str, list[tuple[float, float]]]:
    """Zone id → outer ring as (lon, lat) pairs, from a GeoJSON FeatureCollection."""
    if not geojson:
        return {}
    fc = json.loads(geojson) if isinstance(geojson, str) else geojson
    out = {}
    for f in fc.get("features", []):
        zone = (f.get("properties") or {}).get("zone")
        geom = f.get("geometry") or {}
        if zone and geom.get("type") == "Polygon":
            out[str(zone)] = [(float(x), float(y)) for x, y in geom["coordinates"][0]]
    return out


def _cap_time(t) -> str:
    t = pd.Timestamp(t)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _cap_polygon(ring: list[tuple[float, float]]) -> str | None:
    if len(ring) < 3:
        return None
    pts = list(ring)
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    if len(pts) < 4:
        return None
    return " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in pts)


def to_cap(
    alerts: pd.DataFrame,
    *,
    geojson: str | dict | None = None,
    sender: str = "workbench@smart-city.example",
    status: str = "Actual",
    sent=None,
    zone_names: dict[str, str] | None = None,
) -> list[tuple[str, bytes]]:
    """One CAP 1.2 ``<alert>`` document per alert row: ``[(identifier, xml bytes), ...]``.

    Parameters
    ----------
    alerts
        :func:`workbench.integration.respond` output.
    geojson
        The districts' FeatureCollection (``city["zones"].attrs["geojson"]``) for the area
        polygons; without it the area is described by name only.
    sender, status
        CAP ``<sender>`` and ``<status>`` (``Exercise`` for a synthetic city, say).
    sent
        The ``<sent>`` time (default: the alert's start, so the output is reproducible).
    """
    polys = zone_polygons(geojson)
    names = zone_names or {}
    out = []
    for a in alerts.itertuples(index=False):
        E = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})

        def sub(parent, tag, text=None):
            el = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
            if text is not None:
                el.text = str(text)
            return el

        sub(E, "identifier", a.alert_id)
        sub(E, "sender", sender)
        sub(E, "sent", _cap_time(sent if sent is not None else a.start))
        sub(E, "status", status)
        sub(E, "msgType", "Alert")
        sub(E, "source", "Smart City Workbench")
        sub(E, "scope", "Public")
        sub(E, "code", f"rule:{a.rule}")
        info = sub(E, "info")
        sub(info, "language", "en-GB")
        sub(info, "category", a.category)
        sub(info, "event", a.event)
        sub(info, "responseType", a.response)
        sub(info, "urgency", a.urgency)
        sub(info, "severity", a.severity)
        sub(info, "certainty", a.certainty)
        sub(info, "audience", a.domain.replace("_", " "))
        sub(info, "effective", _cap_time(a.start))
        sub(info, "onset", _cap_time(a.start))
        sub(info, "expires", _cap_time(pd.Timestamp(a.end) + pd.Timedelta("1h")))
        sub(info, "senderName", "Smart City Workbench")
        sub(info, "headline", a.headline)
        sub(info, "description", a.description)
        sub(info, "instruction", a.action)
        params = {"domain": a.domain, "rule": a.rule, "zone": a.zone, "incident_kind": a.incident_kind}
        if pd.notna(a.confidence):
            params["confidence"] = f"{a.confidence:.2f}"
        for k, v in params.items():
            if v:
                p = sub(info, "parameter")
                sub(p, "valueName", k)
                sub(p, "value", v)
        area = sub(info, "area")
        sub(area, "areaDesc", f"{names.get(a.zone, a.zone)} ({a.zone})")
        poly = _cap_polygon(polys.get(a.zone, []))
        if poly:
            sub(area, "polygon", poly)
        sub(area, "geocode")
        geocode = area[-1]
        sub(geocode, "valueName", "workbench:zone")
        sub(geocode, "value", a.zone)
        out.append((a.alert_id, etree.tostring(E, xml_declaration=True, encoding="UTF-8", pretty_print=True)))
    return out


def _centroid(ring):
    pts = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
    return [sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)]


def to_sdm(alerts: pd.DataFrame, *, geojson: str | dict | None = None, source: str = "urn:workbench") -> list[dict]:
    """Smart Data Models ``Alert`` entities (NGSI v2 key-values), one per alert row."""
    polys = zone_polygons(geojson)
    out = []
    for a in alerts.itertuples(index=False):
        ent = {
            "id": f"urn:ngsi-ld:Alert:{a.alert_id}",
            "type": "Alert",
            "name": a.headline,
            "category": a.sdm_category or "security",
            "severity": _SDM_SEVERITY.get(a.severity, "informational"),
            "dateIssued": pd.Timestamp(a.start).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validFrom": pd.Timestamp(a.start).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validTo": (pd.Timestamp(a.end) + pd.Timedelta("1h")).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "description": f"{a.description} Recommended action: {a.action}",
            "alertSource": source,
            "areaServed": a.zone,
            "data": {
                "rule": a.rule, "domain": a.domain, "incidentKind": a.incident_kind, "capCategory": a.category,
                "urgency": a.urgency, "certainty": a.certainty, "responseType": a.response, "action": a.action,
                "confidence": None if pd.isna(a.confidence) else round(float(a.confidence), 3),
            },
        }
        if a.sdm_subcategory:
            ent["subCategory"] = a.sdm_subcategory
        ring = polys.get(a.zone)
        if ring:
            ent["location"] = {"type": "Point", "coordinates": [round(c, 6) for c in _centroid(ring)]}
        out.append(ent)
    return out


def write_alerts(alerts: pd.DataFrame, out_dir: str | os.PathLike, *, geojson=None, status: str = "Actual",
                 zone_names: dict[str, str] | None = None) -> dict[str, Path]:
    """Write ``cap/<id>.xml`` per alert and ``alerts.sdm.json`` (a JSON array) into ``out_dir``."""
    out_dir = Path(out_dir)
    cap_dir = out_dir / "cap"
    cap_dir.mkdir(parents=True, exist_ok=True)
    for ident, xml in to_cap(alerts, geojson=geojson, status=status, zone_names=zone_names):
        (cap_dir / f"{ident}.xml").write_bytes(xml)
    sdm = out_dir / "alerts.sdm.json"
    sdm.write_text(json.dumps(to_sdm(alerts, geojson=geojson), indent=1), encoding="utf-8")
    return {"cap": cap_dir, "sdm": sdm}
