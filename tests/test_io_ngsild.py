from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _io_helpers import FIXTURES, assert_same_cube, reconciles, sample_cube
from workbench.io import ReadError, read_ngsild, read_observations, to_ngsild


def test_temporal_fixture_units_and_offsets():
    cube, r = read_observations(FIXTURES / "ngsild_temporal.json")
    assert (r.n_in, r.n_accepted, r.reasons["unknown_variable"]) == (8, 7, 1)  # laneDirection is text
    tr = cube["transport"]
    assert tr["traffic_flow"].sel(time="2024-07-01T08:00").item() == 515
    assert tr["traffic_speed"].sel(time="2024-07-01T08:00").item() == 22.0  # 09:00+01:00
    assert tr["zone"].item() == "Z01" and tr["lat"].item() == 50.02
    env = cube["environment"]
    assert env["no2"].sel(time="2024-07-01T08:00").item() == pytest.approx(47.0)  # 0.047 mg/m3 (GP)
    assert env["air_temperature"].sel(time="2024-07-01T07:00").item() == pytest.approx(18.0)  # 64.4 °F (FAH)


def test_temporal_values_and_notification():
    cube, r = read_ngsild(FIXTURES / "ngsild_temporal_values.json")
    assert (r.n_in, r.n_accepted) == (4, 4)
    w = cube["water"]
    assert w["water_flow"].values.ravel().tolist() == pytest.approx([90.0, 95.4])  # G52 = l/s
    assert w["water_pressure"].values.ravel().tolist() == pytest.approx([3.1, 2.95])  # kPa -> bar
    cube, r = read_ngsild(FIXTURES / "ngsild_notification_normalized.json")
    assert (r.n_in, r.n_accepted) == (3, 2)
    env = cube["environment"]
    assert str(env["time"].values[0])[:19] == "2024-07-01T12:00:00"  # dateObserved @value, not notifiedAt
    assert env["rainfall"].item() == 1.2 and env["air_temperature"].item() == 24.5


@pytest.mark.parametrize("representation", ["temporal", "temporalValues"])
def test_roundtrip(tmp_path, representation):
    cube = sample_cube(seed=2)
    p = tmp_path / "e.json"
    p.write_text(json.dumps(to_ngsild(cube, representation=representation)), encoding="utf-8")
    back, r = read_observations(p)
    assert r.n_quarantined == 0
    assert_same_cube(cube, back)


def test_not_an_entity_is_a_read_error(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("42", encoding="utf-8")
    with pytest.raises(ReadError, match="x.json: expected an NGSI-LD entity"):
        read_ngsild(p)


_val = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                 st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T03:00:00+03:00", "°F"]))
_inst = st.fixed_dictionaries({"type": st.just("Property"), "value": _val, "observedAt": _val, "unitCode": st.sampled_from(["CEL", "FAH", "KWT", "XYZ", ""])})


@settings(max_examples=50, deadline=None)
@given(entities=st.lists(st.fixed_dictionaries({
    "id": st.one_of(st.text(max_size=4), st.none()),
    "type": st.just("Device"),
    "temperature": st.one_of(st.lists(_inst, max_size=4), _inst, _val),
    "power": st.one_of(st.fixed_dictionaries({"type": st.just("Property"), "values": st.lists(st.lists(_val, max_size=3), max_size=3)}), _val),
}), max_size=4))
def test_property_corrupted_entities_reconcile(entities):
    cube, r = read_ngsild(entities)
    assert reconciles(r)
    expected = 0
    for e in entities:
        t = e["temperature"]
        expected += len(t) if isinstance(t, list) else 1
        p = e["power"]
        expected += max(len(p["values"]), 0) if isinstance(p, dict) else 1
    assert r.n_in == expected
