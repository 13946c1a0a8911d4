"""Quality flags: CF metadata, fault detection, registry-driven thresholds, laziness, properties."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xarray.tests import raise_if_dask_computes

from workbench.perception import FLAG_MASKS, FLAG_MEANINGS, flag_events, flag_names, quality_flags
from workbench.scoring import score

warnings.filterwarnings("ignore", category=RuntimeWarning)


def _system(values: np.ndarray, var: str = "electric_load", zones=None, freq="15min") -> xr.Dataset:
    n_s, n_t = values.shape
    zones = zones if zones is not None else ["Z01"] * n_s
    return xr.Dataset(
        {var: (("sensor", "time"), values, {"units": "kW", "long_name": var})},
        coords={"sensor": [f"S{i}" for i in range(n_s)], "time": pd.date_range("2026-07-06", periods=n_t, freq=freq),
                "zone": ("sensor", zones)},
        attrs={"system": "energy"},
    )


def _noisy(n_s=4, n_t=96 * 4, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_t)
    base = 500 * (1 + 0.4 * np.sin(2 * np.pi * t / 96))
    return base[None, :] * rng.lognormal(0, 0.3, (n_s, 1)) * (1 + 0.05 * rng.standard_normal((n_s, n_t)))


@pytest.fixture(scope="module")
def faulty_city():
    from workbench.synth import make_city

    return make_city(zones=4, sensors_per_system=12, days=14, seed=101, fault_rate=1.5)


def test_cf_flag_attributes_and_completeness(small_city):
    out = quality_flags(small_city["energy"].to_dataset())
    qc = out["electric_load_qc"]
    assert qc.dtype == np.uint8 and qc.dims == ("sensor", "time")
    assert list(qc.attrs["flag_masks"]) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert qc.attrs["flag_meanings"].split()[:6] == ["missing", "gap", "flatline", "spike", "out_of_range", "duplicate"]
    comp = out["electric_load_completeness"]
    assert comp.dims == ("sensor",) and float(comp.min()) >= 0 and float(comp.max()) <= 1
    assert "quality_flags" in out.attrs["history"]


def test_flag_names():
    assert flag_names(3) == ["missing", "gap"]
    assert flag_names(64) == ["drift"]
    assert len(FLAG_MASKS) == len(FLAG_MEANINGS.split())


def test_flags_never_change_the_data(small_city):
    ds = small_city["water"].to_dataset().compute()
    before = ds.copy(deep=True)
    out = quality_flags(ds)
    for v in ("water_flow", "water_pressure"):
        xr.testing.assert_identical(out[v], before[v])
    xr.testing.assert_identical(ds, before)  # the input is not modified either


def test_lazy_with_dask_and_same_as_numpy(small_city):
    lazy = small_city["transport"].to_dataset()
    with raise_if_dask_computes():
        out = quality_flags(lazy)
    assert out["traffic_flow_qc"].chunks is not None
    eager = quality_flags(lazy.compute())
    assert out["traffic_flow_qc"].chunks is not None
    np.testing.assert_array_equal(out["traffic_flow_qc"].values, eager["traffic_flow_qc"].values)


def test_datatree_flags_every_system(small_city):
    out = quality_flags(small_city)
    for system in ("people", "energy", "environment"):
        node = out[system].to_dataset()
        assert all(f"{v}_qc" in node for v in node.data_vars if not v.endswith(("_qc", "_completeness")))
    assert "zones" in out.children and "electric_load_qc" not in out["zones"].to_dataset()


def test_detects_the_reference_city_faults(faulty_city):
    from workbench.synth import ground_truth

    _, faults = ground_truth(faulty_city)
    assert len(faults) >= 20
    det = flag_events(quality_flags(faulty_city), kinds=("gap", "flatline", "spike", "drift"))
    s = score(det, faults, by=["system", "sensor", "kind"])
    assert s["recall"] >= 0.8 and s["precision"] >= 0.8, s


def test_out_of_range_and_duplicate():
    v = _noisy(n_s=3)
    v[1, 10] = -5.0  # below valid_min 0
    ds = _system(v)
    t = ds.indexes["time"].to_numpy().copy()
    t[20] = t[19]
    ds = ds.assign_coords(time=t)
    qc = quality_flags(ds)["electric_load_qc"].values
    assert qc[1, 10] & 16 and not qc[0, 10] & 16
    assert (qc[:, 20] & 32).all() and not (qc[:, 19] & 32).any()


def test_registry_thresholds_drive_flatline_and_can_be_overridden():
    v = _noisy(n_s=4)
    v[0, 100:106] = v[0, 100]  # 6 identical readings = 1.5 h
    ds = _system(v)
    default = quality_flags(ds)["electric_load_qc"].values  # adaptive: continuous data never repeats
    assert (default[0, 100:106] & 4).all()
    strict = quality_flags(ds, thresholds={"electric_load": {"flatline_min_hours": 2, "flatline_hours": 2}})
    assert not (strict["electric_load_qc"].values[0, 100:106] & 4).any()
    off = quality_flags(ds, thresholds={"flatline_hours": None})
    assert not (off["electric_load_qc"].values & 4).any()


def test_quantised_sensor_repeating_itself_is_not_a_flatline():
    rng = np.random.default_rng(1)
    v = np.round(20 + rng.standard_normal((4, 96 * 4)))  # whole degrees: repeats are normal
    ds = _system(v, var="air_temperature")
    qc = quality_flags(ds, thresholds={"flatline_hours": 6})["air_temperature_qc"].values
    assert ((qc & 4) > 0).mean() < 0.05


def test_spike_flagged_but_zone_wide_jump_is_not():
    v = _noisy(n_s=4)
    v[2, 150] *= 2.5  # one sensor
    v[:, 250] *= 3.0  # every sensor of the zone: the city, not a sensor
    qc = quality_flags(_system(v))["electric_load_qc"].values
    assert qc[2, 150] & 8
    assert not (qc[:, 250] & 8).any()


def test_spike_measured_against_the_quiet_zone_mates():
    # two quiet sensors (2 % noise) and two noisy ones (15 %): a 20 % spike on a quiet sensor is
    # 10 of its own noise; against the plain mean of its mates it would drown in their noise
    rng = np.random.default_rng(3)
    t = np.arange(96 * 4)
    base = 500 * (1 + 0.4 * np.sin(2 * np.pi * t / 96))
    sd = np.array([0.02, 0.02, 0.15, 0.15])[:, None]
    v = base[None, :] * (1 + sd * rng.standard_normal((4, len(t))))
    v[0, 200] *= 1.2
    qc = quality_flags(_system(v))["electric_load_qc"].values
    assert qc[0, 200] & 8
    assert ((qc & 8) > 0).sum() <= 2


def test_jump_shared_by_zone_mates_is_not_a_spike():
    v = _noisy(n_s=4)
    v[[1, 3], 200] *= 2.5  # two sensors of four at once: a local event, not a sensor fault
    qc = quality_flags(_system(v))["electric_load_qc"].values
    assert not (qc[:, 200] & 8).any()


def test_sensor_without_zone_mates_is_tested_against_the_other_zones():
    # alone in its zone: a one-step jump against the other zones is a spike, a 4-step bump
    # (a zone event's shape) and a drop (an outage's) are not
    v = _noisy(n_s=5)
    v[4, 100:104] *= 2.0
    v[4, 250] *= 3.0
    v[4, 300] *= 0.3
    qc = quality_flags(_system(v, zones=["Z01"] * 4 + ["Z02"]))["electric_load_qc"].values
    assert (qc[4] & 8).nonzero()[0].tolist() == [250]


def test_drift_against_zone_mates():
    v = _noisy(n_s=4, n_t=96 * 8)
    ramp = np.clip((np.arange(v.shape[1]) - 96 * 3) / (96 * 3), 0, 1)
    v[1] *= 1 + 0.3 * ramp  # slow ramp to +30 % over 3 days
    qc = quality_flags(_system(v))["electric_load_qc"].values
    assert (qc[1] & 64).sum() > 96
    assert (qc[[0, 2, 3]] & 64).sum() == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(length=st.integers(1, 12), start=st.integers(5, 300), gap_hours=st.sampled_from([0.5, 1.0, 2.0]))
def test_nan_run_is_a_gap_iff_long_enough(length, start, gap_hours):
    v = _noisy(n_s=3, seed=start)
    v[1, start:start + length] = np.nan
    qc = quality_flags(_system(v), thresholds={"gap_hours": gap_hours})["electric_load_qc"].values
    assert (qc[1, start:start + length] & 1).all()
    is_gap = length * 0.25 >= gap_hours
    assert bool((qc[1, start:start + length] & 2).all()) is is_gap
    assert not (qc[1, start:start + length] & 2).any() or is_gap
    assert not (qc[[0, 2]] & 3).any()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=8, max_size=64))
def test_flags_are_total_and_leave_values_alone(data):
    v = np.array([data, data[::-1]], dtype=float)
    ds = _system(v)
    out = quality_flags(ds)
    np.testing.assert_array_equal(out["electric_load"].values, v)
    qc = out["electric_load_qc"].values
    assert qc.shape == v.shape and qc.dtype == np.uint8
    np.testing.assert_array_equal((qc & 1) > 0, np.isnan(v))
