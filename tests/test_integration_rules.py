"""Response rules fire on hand-made incidents, states and indices."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from workbench.integration.rules import ALERT_COLUMNS, load_rules, respond

T = pd.date_range("2026-07-06", periods=48, freq="1h")


def _state(load_peak_zone: str | None = None) -> xr.Dataset:
    load = np.full((2, len(T)), 100.0) + np.arange(len(T)) % 24
    if load_peak_zone is not None:
        load[["Z01", "Z02"].index(load_peak_zone), 30:32] = 500.0
    return xr.Dataset({"electric_load": (("zone", "time"), load, {"units": "kW"})}, coords={"zone": ["Z01", "Z02"], "time": T})


def _inc(kind, zone="Z01", a=30, b=33, conf=0.9, sev=0.2):
    return pd.DataFrame([{"kind": kind, "zone": zone, "start": T[a], "end": T[b], "severity": sev, "confidence": conf, "evidence": "[]"}])


def test_leak_routes_to_urban_services_with_the_action():
    al = respond(None, _inc("water_leak"))
    assert list(al.columns) == ALERT_COLUMNS
    row = al.iloc[0]
    assert (row.rule, row.domain, row.zone, row.urgency) == ("water-leak", "urban_services", "Z01", "Immediate")
    assert "district meter area" in row.action
    assert row.certainty == "Likely"


def test_low_confidence_leak_is_filtered_and_certainty_follows_confidence():
    assert respond(None, _inc("water_leak", conf=0.4)).empty
    assert respond(None, _inc("water_leak", conf=0.6))["certainty"].iloc[0] == "Possible"


HEAT_RULES = [r for r in load_rules() if r["id"].startswith("heatwave")]


def test_heatwave_with_load_at_its_peak_adds_demand_response():
    hot = respond(_state("Z01"), _inc("heatwave"), rules=HEAT_RULES)
    assert set(hot["rule"]) == {"heatwave", "heatwave-load-peak"}
    peak = hot[hot["rule"] == "heatwave-load-peak"].iloc[0]
    assert peak.domain == "industry_commerce" and "demand-response" in peak.action
    assert any(e.get("variable") == "electric_load" for e in json.loads(peak.evidence))
    # same heatwave, load at its usual level: only the heatwave notice
    assert set(respond(_state(None), _inc("heatwave"), rules=HEAT_RULES)["rule"]) == {"heatwave"}
    # load peak in another zone does not count
    assert set(respond(_state("Z02"), _inc("heatwave"), rules=HEAT_RULES)["rule"]) == {"heatwave"}


def test_index_rule_needs_the_index_low_long_enough():
    ix_vals = np.full((2, len(T)), 95.0)
    ix_vals[1, 10:13] = 30.0  # 3 h below 50 in Z02
    ix_vals[0, 20] = 30.0  # 1 h in Z01: too short
    ix = xr.Dataset({"index": (("zone", "time"), ix_vals)}, coords={"zone": ["Z01", "Z02"], "time": T})
    none = pd.DataFrame(columns=["kind", "zone", "start", "end", "severity", "confidence", "evidence"])
    al = respond(None, none, index=ix)
    assert al["rule"].tolist() == ["district-index-low"]
    assert al["zone"].tolist() == ["Z02"] and al["start"].iloc[0] == T[10] and al["end"].iloc[0] == T[12]


def test_each_kind_fires_its_rule():
    kinds = {"power_outage": "power-outage", "network_outage": "network-outage", "traffic_incident": "traffic-incident",
             "public_gathering": "public-gathering"}
    for kind, rule in kinds.items():
        assert rule in set(respond(None, _inc(kind))["rule"])


def test_sensor_fault_raises_no_alert_and_nothing_gives_empty_table():
    assert respond(None, _inc("sensor_fault")).empty
    assert list(respond(None, _inc("sensor_fault")).columns) == ALERT_COLUMNS


def test_alert_ids_are_stable():
    a, b = respond(None, _inc("power_outage")), respond(None, _inc("power_outage"))
    assert a["alert_id"].tolist() == b["alert_id"].tolist()


def _kpi_state(ratio: float) -> xr.Dataset:
    st = _state()
    val = np.full((2, len(T)), 0.3)
    val[0, 24:48] = ratio
    return st.assign(night_flow_ratio=(("zone", "time"), val, {"units": "1", "good": "low", "kpi_id": "night_flow_ratio",
                                                                "threshold_warning": 0.5, "threshold_critical": 0.6}))


def test_rules_read_kpis_of_the_state():
    rule = [{"id": "leak-night-flow", "when": {"all": [{"incident": "water_leak"},
                                                        {"state": {"variable": "night_flow_ratio", "kpi_status": "warning"}}]},
             "alert": {"event": "Leak confirmed by night flow", "category": "Infra", "severity": "Severe", "urgency": "Immediate",
                       "response": "Execute", "domain": "urban_services", "action": "prioritise the crew"}}]
    assert respond(_kpi_state(0.55), _inc("water_leak"), rules=rule)["rule"].tolist() == ["leak-night-flow"]
    assert respond(_kpi_state(0.45), _inc("water_leak"), rules=rule).empty  # below the warning level
    rule[0]["when"]["all"][1]["state"]["kpi_status"] = "critical"
    assert respond(_kpi_state(0.55), _inc("water_leak"), rules=rule).empty


def test_kpi_status_needs_a_kpi():
    import pytest

    from workbench.integration.rules import RuleError

    bad = [{"id": "x", "when": {"all": [{"incident": "water_leak"}, {"state": {"variable": "water_flow", "kpi_status": "warning"}}]},
            "alert": {"event": "x", "category": "Infra", "severity": "Severe", "urgency": "Immediate",
                      "response": "Execute", "domain": "urban_services", "action": "x"}}]
    with pytest.raises(RuleError, match="KPI"):
        load_rules(bad)
