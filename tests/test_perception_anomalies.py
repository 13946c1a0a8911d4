"""Anomaly scores and detection: lazy, seasonal, faults masked, event table columns."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench.perception import anomaly_scores, detect_anomalies, profile_key
from workbench.perception import _kernels as K
from workbench.perception._counts import poisson_scan

warnings.filterwarnings("ignore", category=RuntimeWarning)


def _system(n_s=4, days=21, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-07-06", periods=96 * days, freq="15min")
    h = t.hour.to_numpy() + t.minute.to_numpy() / 60
    base = 0.6 + 0.75 * np.exp(-0.5 * ((h - 10) / 2.5) ** 2)
    v = 800 * base[None, :] * rng.lognormal(0, 0.3, (n_s, 1)) * (1 + 0.04 * rng.standard_normal((n_s, len(t))))
    return xr.Dataset({"electric_load": (("sensor", "time"), v, {"units": "kW", "long_name": "electric load"})},
                      coords={"sensor": [f"E{i}" for i in range(n_s)], "time": t, "zone": ("sensor", ["Z01"] * n_s)},
                      attrs={"system": "energy"})


def test_outage_is_detected_with_columns():
    ds = _system()
    ds["electric_load"][:, 96 * 10 + 40: 96 * 10 + 48] *= 0.05  # a 2-hour outage in the zone
    det = detect_anomalies(ds)
    assert list(det.columns[:7]) == ["kind", "system", "zone", "sensor", "start", "end", "severity"]
    assert {"variable", "score"} <= set(det.columns)
    assert (det["kind"] == "anomaly").all()
    hit = det[(det["start"] <= ds.time.values[96 * 10 + 47]) & (det["end"] >= ds.time.values[96 * 10 + 40])]
    assert set(hit["sensor"]) == {"E0", "E1", "E2", "E3"}
    assert (hit["score"] < 0).all()
    assert len(det) <= 8  # no storm of false alarms on a quiet series


def test_quiet_series_has_no_anomalies():
    assert len(detect_anomalies(_system(seed=3))) <= 2


def test_faults_are_masked_not_anomalies():
    ds = _system()
    ds["electric_load"][1, 500:600] = ds["electric_load"][1, 500].values  # a 25-hour flatline
    det = detect_anomalies(ds)
    assert not ((det["sensor"] == "E1") & (det["start"] >= ds.time.values[500]) & (det["end"] <= ds.time.values[599])).any()


def test_scores_lazy_and_equal_to_eager(small_city):
    ds = small_city["energy"].to_dataset()
    with raise_if_dask_computes():
        out = anomaly_scores(ds)
    assert out["electric_load_score"].chunks is not None
    eager = anomaly_scores(ds.compute())
    np.testing.assert_allclose(out["electric_load_score"].values, eager["electric_load_score"].values)
    assert out["electric_load_score"].attrs["long_name"].startswith("anomaly score")


def test_detect_on_a_city_tree(small_city):
    det = detect_anomalies(small_city)
    assert set(det["system"]) <= {"people", "services", "transport", "communication", "water", "energy", "environment"}
    assert (det["end"] >= det["start"]).all()


@pytest.mark.parametrize("profile,n", [("daytype", 3 * 96), ("week", 7 * 96), ("day", 96)])
def test_profile_key(profile, n):
    t = xr.DataArray(pd.date_range("2026-07-06", periods=96 * 14, freq="15min"), dims="time")
    key = profile_key(t.assign_coords(time=t), profile)
    assert key.max() + 1 == n


def test_rolling_median_is_bottleneck_fast_path_and_correct():
    # PERFORMANCE.md pitfall 1: our kernels call bottleneck directly, not xarray's slow fallback
    x = np.random.default_rng(0).standard_normal((3, 200))
    x[1, 50:60] = np.nan
    ours = K.centered_median(x, 9)
    ref = pd.DataFrame(x.T).rolling(9, center=True, min_periods=5).median().to_numpy().T
    np.testing.assert_allclose(ours, ref)


def test_scan_statistic_matches_brute_force():
    z = np.random.default_rng(1).standard_normal((1, 120))
    z[0, 60:70] += 2
    got = K.scan_max(z, (1, 4))
    assert np.argmax(np.abs(got[0])) in range(56, 74)
    assert got[0, 65] > 0


def _requests(n_s=3, days=21, seed=0, burst=None):
    """Service requests per hour (Poisson counts per 15 min × 4), one zone."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-07-06", periods=96 * days, freq="15min")
    h = t.hour.to_numpy() + t.minute.to_numpy() / 60
    mu = 0.3 * (0.15 + 1.3 * np.exp(-0.5 * ((h - 11) / 3.5) ** 2))
    mu = np.broadcast_to(mu, (n_s, len(t))).copy()
    if burst is not None:
        mu[:, burst] *= 7.0  # a power outage: requests × 7 in the zone
    v = rng.poisson(mu) * 4.0
    return xr.Dataset({"service_requests": (("sensor", "time"), v, {"units": "1/h", "long_name": "service requests"})},
                      coords={"sensor": [f"S{i}" for i in range(n_s)], "time": t, "zone": ("sensor", ["Z01"] * n_s)},
                      attrs={"system": "services"})


def test_poisson_scan_finds_a_burst_and_stays_quiet_on_noise():
    rng = np.random.default_rng(1)
    e = np.full((1, 2000), 0.5)
    c = rng.poisson(e).astype(float)
    quiet = poisson_scan(c, e, (1, 4, 16))
    assert np.nanmax(quiet) < 5.0
    c[0, 1000:1008] = 4.0  # 32 requests in 2 hours where 4 are expected
    loud = poisson_scan(c, e, (1, 4, 16))
    assert np.nanmax(loud[0, 1000:1008]) > 6
    # the statistic for one window equals the signed root log-likelihood ratio
    one = poisson_scan(np.array([[5.0]]), np.array([[2.0]]), (1,))
    assert one[0, 0] == pytest.approx(np.sqrt(2 * (5 * np.log(5 / 2) - 3)))


def test_service_request_burst_is_detected_by_the_poisson_model():
    burst = slice(96 * 10 + 40, 96 * 10 + 52)  # 3 h around noon
    det = detect_anomalies(_requests(burst=burst))
    ds = _requests(burst=burst)
    assert len(det) and (det["variable"] == "service_requests").all()
    hit = det[(det["start"] <= ds.time.values[burst.stop - 1]) & (det["end"] >= ds.time.values[burst.start])]
    assert len(hit) and (hit["score"] > 0).all()
    assert len(detect_anomalies(_requests(seed=3))) == 0  # plain Poisson noise: no events


def test_zone_pooling_ignores_one_odd_sensor_and_sees_a_zone_wide_shift():
    ds = _system(n_s=4)
    ds["electric_load"][0, 96 * 12: 96 * 12 + 8] *= 3.0  # one sensor (an unflagged fault)
    det = detect_anomalies(ds, thresholds={"anomaly_pool": "zone"})
    assert not ((det["start"] <= ds.time.values[96 * 12 + 7]) & (det["end"] >= ds.time.values[96 * 12])).any()
    own = detect_anomalies(ds, thresholds={"anomaly_pool": "sensor"})
    assert ((own["sensor"] == "E0") & (own["start"] <= ds.time.values[96 * 12 + 7])
            & (own["end"] >= ds.time.values[96 * 12])).any()
    ds = _system(n_s=4)
    ds["electric_load"][:, 96 * 12: 96 * 12 + 8] *= 1.25  # the whole zone, +25 % for 2 h
    det = detect_anomalies(ds, thresholds={"anomaly_pool": "zone"})
    hit = det[(det["start"] <= ds.time.values[96 * 12 + 7]) & (det["end"] >= ds.time.values[96 * 12])]
    assert set(hit["sensor"]) == {"E0", "E1", "E2", "E3"}


def test_variable_threshold_scales_the_score():
    ds = _system()
    a = anomaly_scores(ds)["electric_load_score"].values
    b = anomaly_scores(ds, thresholds={"electric_load": {"anomaly_threshold": 10.0}})["electric_load_score"].values
    from workbench.perception import DEFAULT_THRESHOLD
    from workbench.perception._common import thresholds_for
    t = thresholds_for("electric_load")["anomaly_threshold"] or DEFAULT_THRESHOLD
    np.testing.assert_allclose(b, a * np.float32(t / 10.0), rtol=1e-5, atol=1e-5)


def test_variable_scan_hours_add_a_long_window():
    ds = _system(n_s=4, days=28, seed=2)
    ds["electric_load"][:, 96 * 14: 96 * 16] *= 1.06  # the whole zone, +6 % for two days
    base = anomaly_scores(ds)["electric_load_score"].values[:, 96 * 14: 96 * 16]
    long = anomaly_scores(ds, thresholds={"electric_load": {"anomaly_scan_hours": [0.25, 1, 4, 16, 48]}})
    assert "192" in long["electric_load_score"].attrs["description"]
    assert np.nanmax(long["electric_load_score"].values[:, 96 * 14: 96 * 16]) > np.nanmax(base)


@pytest.fixture(scope="module")
def heat_city():
    """6 zones, a heatwave over three of them (seed 10; its truth is read below, by the test only)."""
    from workbench.synth import make_city

    return make_city(zones=6, sensors_per_system=12, days=21, seed=10)


def test_partial_heatwave_is_found_by_the_zone_contrast_and_fronts_alone_are_not(heat_city):
    from workbench.synth import ground_truth, make_city

    events, _ = ground_truth(heat_city)
    hw = events[(events["kind"] == "heatwave") & (events["system"] == "environment")]
    assert 0 < hw["zone"].nunique() < 6
    env = heat_city["environment"].to_dataset()
    det = detect_anomalies(env)
    det = det[det["variable"] == "air_temperature"]
    start, end = hw["start"].min(), hw["end"].max()
    during = det[(det["start"] <= end) & (det["end"] >= start)]
    assert set(during["zone"]) == set(hw["zone"])
    assert (during["score"] > 0).all()
    on = anomaly_scores(env, variables=["air_temperature"])["air_temperature_score"]
    off = anomaly_scores(env, variables=["air_temperature"],
                         thresholds={"air_temperature": {"anomaly_contrast_hours": None}})["air_temperature_score"]
    hot = on["zone"].isin(list(hw["zone"])).values
    span = slice(start, end)
    gain = (on - off).sel(time=span).values
    assert np.nanmax(gain[hot]) > 2.0  # the contrast lifts the heatwave zones' score ...
    assert np.nanmax(np.abs(gain[~hot])) == 0.0  # ... and leaves the spared zones' alone
    quiet = make_city(zones=6, sensors_per_system=12, days=21, seed=10, events=False)  # weather fronts, no heatwave
    q = detect_anomalies(quiet["environment"].to_dataset())
    assert not (q["variable"] == "air_temperature").any()


def test_zone_contrast_does_not_depend_on_the_sensor_chunks(heat_city):
    env = heat_city["environment"].to_dataset()[["air_temperature"]]
    a = anomaly_scores(env.chunk({"sensor": 5}))["air_temperature_score"]
    assert a.chunks is not None
    b = anomaly_scores(env.compute())["air_temperature_score"]
    np.testing.assert_allclose(a.values, b.values, rtol=1e-6, atol=1e-6)


def _zones_system(n_z=6, per=3, days=21, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-07-06", periods=96 * days, freq="15min")
    h = t.hour.to_numpy() + t.minute.to_numpy() / 60
    base = 40 + 10 * np.cos(2 * np.pi * (h - 3) / 24)
    n = n_z * per
    v = base[None, :] * rng.lognormal(0, 0.1, (n, 1)) * (1 + 0.03 * rng.standard_normal((n, len(t))))
    zones = [f"Z{k % n_z + 1:02d}" for k in range(n)]
    return xr.Dataset({"traffic_speed": (("sensor", "time"), v, {"units": "km/h", "long_name": "traffic speed"})},
                      coords={"sensor": [f"T{i}" for i in range(n)], "time": t, "zone": ("sensor", zones)},
                      attrs={"system": "transport"})


def test_city_median_cancels_a_citywide_dip_and_keeps_a_zone_dip():
    ds = _zones_system()
    a, b = 96 * 9 + 30, 96 * 9 + 42
    ds["traffic_speed"][:, a:b] *= 0.8  # rain: every zone 20 % slower for 3 h
    z1 = ds["zone"].values == "Z01"
    c, d = 96 * 14 + 30, 96 * 14 + 42
    ds["traffic_speed"][z1, c:d] *= 0.8  # an incident: one zone
    on = detect_anomalies(ds, thresholds={"traffic_speed": {"anomaly_city": True}})
    off = detect_anomalies(ds, thresholds={"traffic_speed": {"anomaly_city": False}})
    t = ds.time.values

    def seen(det, lo, hi):
        return set(det[(det["start"] <= t[hi - 1]) & (det["end"] >= t[lo])]["zone"])

    assert seen(off, a, b) == {f"Z{k:02d}" for k in range(1, 7)}  # the temporal scan sees the rain everywhere
    assert seen(on, a, b) == set()  # against the city's median zone it is gone
    assert seen(on, c, d) == {"Z01"}
    chunked = anomaly_scores(ds.chunk({"sensor": 4}), thresholds={"traffic_speed": {"anomaly_city": True}})
    eager = anomaly_scores(ds, thresholds={"traffic_speed": {"anomaly_city": True}})
    assert chunked["traffic_speed_score"].chunks is not None
    np.testing.assert_allclose(chunked["traffic_speed_score"].values, eager["traffic_speed_score"].values, rtol=1e-6, atol=1e-6)


def test_zone_order_gives_the_same_scores_without_putting_sensors_back(heat_city):
    env = heat_city["environment"].to_dataset()[["air_temperature", "no2"]].chunk({"sensor": 5})
    a = anomaly_scores(env)
    b = anomaly_scores(env, zone_order=True)
    zones = b["zone"].values
    assert list(zones) == sorted(zones)  # zone order (stable), so each chunk holds whole zones
    for v in ("air_temperature_score", "no2_score", "no2_effect"):
        np.testing.assert_allclose(b[v].values, a[v].sel(sensor=b["sensor"]).values, rtol=1e-6, atol=1e-6)


def test_slot_median_equals_flox_nanmedian():
    from flox import groupby_reduce

    from workbench.perception._blocks import slot_median

    rng = np.random.default_rng(1)
    slot = np.arange(96 * 21) % (96 * 3)
    y = rng.standard_normal((5, slot.size))
    y[rng.random(y.shape) < 0.1] = np.nan
    y[2, slot == 7] = np.nan  # an empty slot
    want, _ = groupby_reduce(y, slot, func="nanmedian", expected_groups=np.arange(96 * 3 + 1), axis=-1)
    np.testing.assert_allclose(slot_median(y, slot, 96 * 3 + 1), np.asarray(want), equal_nan=True)


def test_variable_profile_overrides_the_call_profile():
    ds = _system(n_s=4, days=21, seed=4)
    own = anomaly_scores(ds, thresholds={"electric_load": {"anomaly_profile": "day"}})["electric_load_score"].values
    day = anomaly_scores(ds, profile="day")["electric_load_score"].values
    week = anomaly_scores(ds, profile="daytype")["electric_load_score"].values
    np.testing.assert_allclose(own, day)
    assert not np.allclose(own, week, equal_nan=True)
