"""Incidents: fused from co-occurring zone signals, scored against the reference city's truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench.evaluation import false_alarm_rate, score_incidents
from workbench.integration.incidents import INCIDENT_COLUMNS, INCIDENT_KINDS, detect_incidents, zone_signals
from workbench.synth import EVENT_KINDS, ground_truth, make_city


@pytest.fixture(scope="module")
def city():
    """4 zones, 3 sensors per zone and system, 14 days (small, but a zone median has 3 sensors)."""
    return make_city(zones=4, sensors_per_system=12, days=14, seed=5)


@pytest.fixture(scope="module")
def quiet():
    """The same city without events; faults stay on, so a faulty sensor must not raise an incident."""
    return make_city(zones=4, sensors_per_system=12, days=14, seed=5, events=False)


@pytest.fixture(scope="module")
def incidents(city):
    return detect_incidents(city)


def test_kind_names_match_the_reference_city():
    assert set(EVENT_KINDS) | {"sensor_fault"} == set(INCIDENT_KINDS)


def test_small_city_end_to_end(city, incidents):
    assert list(incidents.columns) == INCIDENT_COLUMNS
    assert set(incidents["kind"]) <= set(INCIDENT_KINDS)
    assert (incidents["end"] >= incidents["start"]).all()
    assert (incidents["detected_at"] >= incidents["start"]).all()
    assert incidents["confidence"].between(0, 1).all()
    for ev in incidents["evidence"]:
        items = json.loads(ev)
        assert items and all("variable" in e for e in items)
    events, _ = ground_truth(city)
    s = score_incidents(incidents, events)
    assert s.loc["all", "n_events"] >= 5
    assert s.loc["all", "f1"] >= 0.85


def test_evidence_says_which_systems_moved(incidents):
    power = incidents[incidents["kind"] == "power_outage"]
    if power.empty:
        pytest.skip("no power outage in this small city")
    ev = {e["variable"]: e for e in json.loads(power["evidence"].iloc[0])}
    assert ev["electric_load"]["direction"] == "down"


def test_event_free_city_has_no_incidents(quiet):
    inc = detect_incidents(quiet)
    assert false_alarm_rate(inc, zones=4, days=14) <= 0.25  # at most one in 8 zone-weeks
    assert len(inc) <= 1


def test_zone_signals_stay_lazy(city):
    with raise_if_dask_computes():
        sig = zone_signals(city)
    assert dict(sig["electric_load"].sizes) == {"zone": 4, "time": 14 * 96}
    assert "n_electric_load" in sig


def test_one_dead_feeder_is_a_sensor_fault_not_a_power_outage(quiet):
    """One sensor's load drops to zero for three hours: a zone median of three ignores it."""
    energy = quiet["energy"].to_dataset().compute()
    sensor = str(energy["sensor"].values[0])
    zone = str(energy["zone"].values[0])
    t = energy.indexes["time"]
    energy["electric_load"].loc[dict(sensor=sensor, time=slice(t[500], t[511]))] = 0.0
    tree = quiet.copy()
    tree["energy"] = xr.DataTree(energy)
    inc = detect_incidents(tree)
    assert not ((inc["kind"] == "power_outage") & (inc["zone"] == zone)).any()
    anomalies = pd.DataFrame([{"kind": "anomaly", "system": "energy", "zone": zone, "sensor": sensor, "start": t[500],
                               "end": t[511], "severity": 1.0, "variable": "electric_load", "score": 12.0}])
    inc = detect_incidents(tree, anomalies=anomalies)
    faults = inc[inc["kind"] == "sensor_fault"]
    assert len(faults) == 1
    assert (faults["sensor"].iloc[0], faults["zone"].iloc[0]) == (sensor, zone)
    assert not (inc["kind"].isin(EVENT_KINDS) & (inc["zone"] == zone)).any()


def test_anomalies_inside_an_incident_become_its_evidence(city, incidents):
    row = incidents[incidents["kind"] != "sensor_fault"].iloc[0]
    system = {"heatwave": "energy", "water_leak": "water", "power_outage": "energy", "network_outage": "communication",
              "traffic_incident": "transport", "public_gathering": "people"}[row["kind"]]
    an = pd.DataFrame([{"kind": "anomaly", "system": system, "zone": row["zone"], "sensor": "X1", "start": row["start"],
                        "end": row["start"], "severity": 1.0, "variable": "v", "score": 9.0}])
    inc = detect_incidents(city, anomalies=an)
    assert not (inc["kind"] == "sensor_fault").any()
    hit = inc[(inc["kind"] == row["kind"]) & (inc["zone"] == row["zone"]) & (inc["start"] == row["start"])]
    assert any(e.get("sensor") == "X1" for e in json.loads(hit["evidence"].iloc[0]))


def test_score_incidents_matches_kind_zone_and_time():
    t = pd.Timestamp("2026-07-06 10:00")
    ev = pd.DataFrame({"kind": ["water_leak", "power_outage"], "zone": ["Z01", "Z02"], "start": [t, t],
                       "end": [t + pd.Timedelta("6h"), t + pd.Timedelta("1h")], "event_id": [0, 1]})
    inc = pd.DataFrame({"kind": ["water_leak", "power_outage", "power_outage"], "zone": ["Z01", "Z03", "Z02"],
                        "start": [t + pd.Timedelta("2h"), t, t + pd.Timedelta("5h")],
                        "end": [t + pd.Timedelta("7h"), t + pd.Timedelta("1h"), t + pd.Timedelta("6h")],
                        "detected_at": [t + pd.Timedelta("2h"), t, t + pd.Timedelta("5h")]})
    s = score_incidents(inc, ev)
    assert s.loc["water_leak", "f1"] == 1.0 and s.loc["water_leak", "ttd_median_min"] == 120.0
    assert s.loc["power_outage", "tp"] == 0  # wrong zone, and too late in the right one
    assert np.isclose(s.loc["all", "precision"], 1 / 3) and np.isclose(s.loc["all", "recall"], 0.5)
