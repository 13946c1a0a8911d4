"""The vocabulary is valid, complete, and every variable the code uses is registered."""

from __future__ import annotations

import re
import pytest
import yaml

from workbench import registry, units

REQUIRED = {
    "people": {"footfall"},
    "services": {"service_requests"},
    "transport": {"traffic_flow", "traffic_speed"},
    "communication": {"data_traffic", "connected_devices"},
    "water": {"water_flow", "water_pressure"},
    "energy": {"electric_load"},
    "environment": {"air_temperature", "rainfall", "pm25", "no2"},
}


def test_seven_systems_in_order():
    assert registry.SYSTEMS == ("people", "services", "transport", "communication", "water", "energy", "environment")


@pytest.mark.parametrize("system", REQUIRED)
def test_required_variables_registered(system):
    assert REQUIRED[system] <= set(registry.variables_of(system))


def test_every_variable_has_a_valid_entry():
    for name, v in registry.load_variables().items():
        assert v["aggregation"] in {"sum", "mean"}, name
        assert v["valid_min"] < v["valid_max"], name
        units.check_unit(v["units"])
        assert v["long_name"], name


def test_aggregation_follows_physics():
    assert registry.variable("traffic_flow")["aggregation"] == "sum"
    assert registry.variable("traffic_speed")["aggregation"] == "mean"
    assert registry.variable("air_temperature")["aggregation"] == "mean"
    assert registry.variable("electric_load")["aggregation"] == "sum"


def test_aliases_resolve_and_unknown_is_none():
    assert registry.resolve_alias("PM2.5") == "pm25"
    assert registry.resolve_alias("Temperature") == "air_temperature"
    assert registry.resolve_alias("no such thing") is None


def test_schema_check_rejects_bad_files(monkeypatch):
    good = registry.load_yaml("variables.yml")
    bad = yaml.safe_load(yaml.safe_dump(good, sort_keys=False))
    bad["systems"]["energy"]["variables"]["electric_load"]["aggregation"] = "median"
    with pytest.raises(registry.RegistryError, match="aggregation must be sum or mean"):
        registry._check(bad)
    bad = yaml.safe_load(yaml.safe_dump(good, sort_keys=False))
    bad["systems"]["energy"]["variables"]["electric_load"]["units"] = "bananas per hour"
    with pytest.raises(registry.RegistryError, match="electric_load"):
        registry._check(bad)
    bad = yaml.safe_load(yaml.safe_dump(good, sort_keys=False))
    bad["systems"]["water"]["variables"]["water_flow"]["aliases"] = ["power"]
    with pytest.raises(registry.RegistryError, match="alias 'power'"):
        registry._check(bad)


def test_unknown_variable_error_names_it():
    with pytest.raises(KeyError, match="'nope' is not a registered variable"):
        registry.variable("nope")


def test_every_variable_the_code_writes_is_registered(small_city):
    """Each system node's data variables (and *_qc companions) are registered names."""
    known = set(registry.all_variables())
    for system in registry.SYSTEMS:
        for var in small_city[system].data_vars:
            assert re.sub(r"_(qc|completeness|score)$", "", var) in known, (system, var)


@pytest.mark.parametrize(
    "value, unit, var, expected",
    [
        (1500.0, "W", "electric_load", 1.5),
        (212.0, "°F", "air_temperature", 100.0),
        (1.0, "l/s", "water_flow", 3.6),
        (1.0, "KWT", "electric_load", 1.0),
        (36.0, "MTS", "traffic_speed", 129.6),
        (1000.0, "MB/h", "data_traffic", 1.0),
    ],
)
def test_units_convert(value, unit, var, expected):
    import numpy as np

    assert units.to_canonical(np.array([value]), unit, var)[0] == pytest.approx(expected)


def test_unconvertible_unit_is_a_clear_error():
    import numpy as np

    with pytest.raises(units.UnitError, match="cannot be converted to 'kW'"):
        units.to_canonical(np.array([1.0]), "m/s", "electric_load")


def test_event_vocabulary_is_one_source():
    from workbench.integration.incidents import INCIDENT_KINDS, KIND_SYSTEMS
    from workbench.synth import EVENT_KINDS, EVENT_SYSTEMS

    assert registry.event_kinds() == EVENT_KINDS == INCIDENT_KINDS[:-1]
    assert set(registry.event_primary()) == set(EVENT_KINDS)
    for kind in EVENT_KINDS:
        assert registry.event_primary()[kind] in EVENT_SYSTEMS[kind] == KIND_SYSTEMS[kind]
