"""Transport and communication anomalies: short incidents and outages (session 4)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from workbench.perception import anomaly_scores, detect_anomalies

warnings.filterwarnings("ignore", category=RuntimeWarning)


def _speeds(n_z=6, per=3, days=21, seed=0, noise=0.03):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-07-06", periods=96 * days, freq="15min")
    h = t.hour.to_numpy() + t.minute.to_numpy() / 60
    base = 40 + 10 * np.cos(2 * np.pi * (h - 3) / 24)
    n = n_z * per
    v = base[None, :] * rng.lognormal(0, 0.1, (n, 1)) * (1 + noise * rng.standard_normal((n, len(t))))
    zones = [f"Z{k % n_z + 1:02d}" for k in range(n)]
    return xr.Dataset({"traffic_speed": (("sensor", "time"), v, {"units": "km/h", "long_name": "traffic speed"})},
                      coords={"sensor": [f"T{i}" for i in range(n)], "time": t, "zone": ("sensor", zones)},
                      attrs={"system": "transport"})


def test_a_30_minute_incident_passes_the_floor_with_a_30_minute_effect_window():
    ds = _speeds()
    z1 = ds["zone"].values == "Z01"
    a = 96 * 12 + 44
    ds["traffic_speed"][z1, a:a + 2] *= 0.8  # two steps 20 % slower in one zone
    t = ds.time.values

    def hit(hours):
        th = {"traffic_speed": {"anomaly_effect_hours": hours, "anomaly_min_effect": 0.15}}
        det = detect_anomalies(ds, thresholds=th)
        return set(det[(det["start"] <= t[a + 1]) & (det["end"] >= t[a])]["zone"])

    assert hit(0.5) == {"Z01"}
    assert hit(None) == set()  # the 1-hour (5-step) median of two slow steps is no departure
    eff = anomaly_scores(ds, thresholds={"traffic_speed": {"anomaly_effect_hours": 0.5}})["traffic_speed_effect"]
    assert float(eff[z1, a:a + 2].mean()) < -0.15  # glog of 0.8: about -0.22
    assert "0.5 h median" in eff.attrs["long_name"]


def test_traffic_speed_keeps_drops_only():
    ds = _speeds()
    z1, z2 = ds["zone"].values == "Z01", ds["zone"].values == "Z02"
    a = 96 * 12 + 40
    ds["traffic_speed"][z1, a:a + 8] *= 0.6  # an incident's queue: 40 % slower for 2 h
    ds["traffic_speed"][z2, a:a + 8] *= 1.4  # 40 % faster: an empty road, no event
    t = ds.time.values
    det = detect_anomalies(ds)
    assert set(det[(det["start"] <= t[a + 7]) & (det["end"] >= t[a])]["zone"]) == {"Z01"}
    both = detect_anomalies(ds, thresholds={"traffic_speed": {"anomaly_direction": "both"}})
    assert set(both[(both["start"] <= t[a + 7]) & (both["end"] >= t[a])]["zone"]) == {"Z01", "Z02"}


def test_each_zone_loading_on_the_city_cancels_uneven_rain():
    from workbench.perception._cityload import loading

    ds = _speeds(per=6, noise=0.02)
    zones = ds["zone"].values
    m = {f"Z{k:02d}": 0.5 + 0.2 * (k - 1) for k in range(1, 7)}  # rain slows zones 0.5x .. 1.5x the city's
    t = ds.time.values
    rain = [96 * d + 52 for d in (2, 5, 8, 11, 15, 18)]  # six 3-hour showers over the whole city
    for a in rain:
        for zone, k in m.items():
            ds["traffic_speed"][zones == zone, a:a + 12] *= 1 - 0.05 * k
    b = 96 * 13 + 40
    ds["traffic_speed"][zones == "Z03", b:b + 8] *= 0.6  # an incident in one zone
    th = {"traffic_speed": {"anomaly_min_effect": 0.03, "anomaly_pool_clip": 5}}  # a shower's 2.5-7.5 % passes the floor here

    def seen(mode, lo, hi):
        det = detect_anomalies(ds, thresholds={"traffic_speed": {**th["traffic_speed"], "anomaly_city": mode}})
        return set(det[(det["start"] <= t[hi]) & (det["end"] >= t[lo])]["zone"])

    assert "Z06" in seen(True, rain[0], rain[0] + 11)  # against the median zone the heaviest-hit zone departs
    assert all(seen("loading", a, a + 11) == set() for a in rain)
    assert seen("loading", b, b + 7) == {"Z03"}
    chunked = anomaly_scores(ds.chunk({"sensor": 5}), thresholds={"traffic_speed": {"anomaly_city": "loading"}})
    eager = anomaly_scores(ds, thresholds={"traffic_speed": {"anomaly_city": "loading"}})
    np.testing.assert_allclose(chunked["traffic_speed_score"].values, eager["traffic_speed_score"].values, rtol=1e-6, atol=1e-6)
    c = np.array([0.0, 2.0, -2.0, 0.5, np.nan])
    np.testing.assert_allclose(loading(np.array([[9.0, 2.4, -2.4, 9.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]]), c), [1.2, 0.0])
    np.testing.assert_allclose(loading(np.ones((1, 5)), np.zeros(5)), [1.0])  # a city that never departs: the plain difference


def _transport(n_z=6, per=3, days=21, seed=1):
    ds = _speeds(n_z=n_z, per=per, days=days, seed=seed)
    rng = np.random.default_rng(seed + 100)
    h = ds.time.dt.hour.values + ds.time.dt.minute.values / 60
    base = 100 + 400 * np.exp(-0.5 * ((h - 8) / 1.5) ** 2) + 300 * np.exp(-0.5 * ((h - 17) / 2) ** 2)
    n = ds.sizes["sensor"]
    flow = base[None, :] * rng.lognormal(0, 0.3, (n, 1)) * (1 + 0.04 * rng.standard_normal((n, ds.sizes["time"])))
    return ds.assign(traffic_flow=(("sensor", "time"), flow, {"units": "1/h", "long_name": "traffic flow"}))


def test_a_flow_drop_counts_only_where_speed_drops_too():
    from workbench.integration._anomalies import gather_anomalies, lazy_anomalies

    ds = _transport()
    zones = ds["zone"].values
    a = 96 * 12 + 40
    for zone, flow, speed in (("Z01", 0.6, 0.6), ("Z02", 0.6, 1.0), ("Z03", 1.6, 1.0)):
        ds["traffic_flow"][zones == zone, a:a + 8] *= flow
        ds["traffic_speed"][zones == zone, a:a + 8] *= speed
    t = ds.time.values

    def flow_zones(det):
        f = det[(det["variable"] == "traffic_flow") & (det["start"] <= t[a + 7]) & (det["end"] >= t[a])]
        return set(f["zone"])

    assert flow_zones(detect_anomalies(ds)) == {"Z01", "Z03"}  # an incident's queue; a crowd arriving
    off = {"traffic_flow": {"anomaly_confirmed_by": None}}
    assert flow_zones(detect_anomalies(ds, thresholds=off)) == {"Z01", "Z02", "Z03"}  # fewer trips alone: gone above
    city = xr.DataTree.from_dict({"/transport": ds})
    lazy = gather_anomalies(lazy_anomalies(city))  # the pipeline's tables: the same rows
    pd.testing.assert_frame_equal(lazy, detect_anomalies(city), check_dtype=False)


def test_pool_clip_is_per_variable():
    ds = _speeds()
    z1 = ds["zone"].values == "Z01"
    a = 96 * 12 + 80
    ds["traffic_speed"][z1, a:a + 3] *= 0.5  # a short queue halving every detector's speed

    def peak(clip):
        s = anomaly_scores(ds, thresholds={"traffic_speed": {"anomaly_pool_clip": clip}})["traffic_speed_score"]
        return float(abs(s[z1, a:a + 3]).max())

    assert peak(8) > 1.4 * peak(5)  # each sensor's z (about -20) counts up to the clip in the zone mean
    assert peak(None) == peak(5)  # the default: POOL_CLIP


def _cells(n_z=6, per=3, days=21, seed=2):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-07-06", periods=96 * days, freq="15min")
    h = t.hour.to_numpy() + t.minute.to_numpy() / 60
    base = 0.3 + np.exp(-0.5 * ((h - 13) / 3) ** 2) + 0.4 * np.exp(-0.5 * ((h - 21) / 2) ** 2)
    n = n_z * per
    v = 15 * base[None, :] * rng.lognormal(0, 0.3, (n, 1)) * (1 + 0.03 * rng.standard_normal((n, len(t))))
    zones = [f"Z{k % n_z + 1:02d}" for k in range(n)]
    ds = xr.Dataset({"data_traffic": (("sensor", "time"), v, {"units": "GB/h", "long_name": "mobile data traffic"})},
                    coords={"sensor": [f"C{i}" for i in range(n)], "time": t, "zone": ("sensor", zones)},
                    attrs={"system": "communication"})
    ids = [f"Z{k + 1:02d}" for k in range(n_z)]  # zones in a row: each touches the one before and after
    nb = [" ".join(ids[j] for j in (k - 1, k + 1) if 0 <= j < n_z) for k in range(n_z)]
    return xr.DataTree.from_dict({"/communication": ds, "/zones": xr.Dataset({"neighbours": ("zone", nb)}, coords={"zone": ids})})


def test_a_rise_next_to_an_outage_is_kept_and_one_elsewhere_is_not():
    from workbench.perception._common import zone_neighbours

    city = _cells()
    ds = city["communication"].to_dataset()
    zones = ds["zone"].values
    a = 96 * 12 + 52
    ds["data_traffic"][zones == "Z01", a:a + 8] *= 0.02  # an outage: the cells fail for 2 h
    for zone in ("Z02", "Z04"):  # +15 %: Z02 takes Z01's phones; Z04 is two zones away
        ds["data_traffic"][zones == zone, a:a + 8] *= 1.15
    city = xr.DataTree.from_dict({"/communication": ds, "/zones": city["zones"].to_dataset()})
    t = ds.time.values

    def seen(det):
        return set(det[(det["start"] <= t[a + 7]) & (det["end"] >= t[a])]["zone"])

    assert zone_neighbours(city)["Z02"] == ["Z01", "Z03"]
    assert seen(detect_anomalies(city)) == {"Z01", "Z02"}  # the rise is under the own floor (0.3): kept as corroborated
    off = {"data_traffic": {"anomaly_corroborated_nearby": None}}
    assert seen(detect_anomalies(city, thresholds=off)) == {"Z01"}
    assert seen(detect_anomalies(ds)) == {"Z01"}  # one system alone: no zone table, no adjacency
    import dask

    from workbench.integration._anomalies import gather_anomalies, lazy_anomalies

    chunked = xr.DataTree.from_dict({"/communication": ds.chunk({"sensor": 5}), "/zones": city["zones"].to_dataset()})
    got = gather_anomalies(dask.compute(lazy_anomalies(chunked))[0])
    pd.testing.assert_frame_equal(got, detect_anomalies(city))  # the pipeline's tables: the same rows
    assert seen(got) == {"Z01", "Z02"}
