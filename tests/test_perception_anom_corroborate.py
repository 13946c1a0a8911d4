"""Corroborated anomalies: a variable's lower bar where another system's detection in the same
zone confirms the event (``anomaly_corroborated_by``; service requests during outages)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from workbench.perception import detect_anomalies
from workbench.perception.anomalies import corroborate, corroborated_bar
from workbench.perception._common import thresholds_for
from workbench.synth import ground_truth, make_city

T = pd.Timestamp("2026-07-06 10:00")
H = pd.Timedelta("1h")


def _row(system, variable, zone, start, end, score, sensor=None):
    return dict(kind="anomaly", system=system, zone=zone, sensor=sensor or f"{system[:3]}-{zone}", start=start, end=end,
                severity=abs(score), variable=variable, score=score)


def _det(*rows):
    return pd.DataFrame(list(rows))


def test_corroborate_needs_the_named_variable_its_direction_and_the_zone():
    weak = _det(_row("services", "service_requests", "Z01", T, T + H, 2.5))
    drop = _row("energy", "electric_load", "Z01", T + 0.5 * H, T + 2 * H, -9.0)
    assert len(corroborate(_det(drop), weak)) == 2
    assert len(corroborate(_det({**drop, "score": 9.0}), weak)) == 1  # a rise of load is no outage
    assert len(corroborate(_det({**drop, "zone": "Z02"}), weak)) == 1  # another zone
    assert len(corroborate(_det({**drop, "variable": "traffic_speed", "system": "transport"}), weak)) == 1  # not named
    late = {**drop, "start": T + 3 * H, "end": T + 4 * H}
    assert len(corroborate(_det(late), weak)) == 1  # 2 h after the weak run: beyond the 1 h tolerance
    assert len(corroborate(_det(late), weak, tolerance="2h")) == 2


def test_corroborate_keeps_no_weak_run_that_a_detection_already_covers():
    weak = _det(_row("services", "service_requests", "Z01", T, T + 3 * H, 2.5, sensor="s1"))
    det = _det(_row("energy", "electric_load", "Z01", T, T + H, -9.0),
               _row("services", "service_requests", "Z01", T + H, T + 2 * H, 6.0, sensor="s1"))
    out = corroborate(det, weak)
    pd.testing.assert_frame_equal(out, det)


def test_the_bar_is_in_the_variables_own_units():
    th = thresholds_for("service_requests")
    assert th["anomaly_corroborated_by"]["electric_load"] == "down"
    # score = statistic x 5 / anomaly_threshold: a statistic of 1.6 is a score of 2.0
    assert corroborated_bar(th) == pytest.approx(5.0 * th["anomaly_corroborated_threshold"] / th["anomaly_threshold"])
    assert corroborated_bar(th, 10.0) == pytest.approx(2 * corroborated_bar(th))
    assert corroborated_bar(thresholds_for("footfall")) is None
    assert corroborated_bar(thresholds_for("electric_load")) == pytest.approx(2.5)  # 3.0 of its own 6.0 bar


@pytest.fixture(scope="module")
def city():
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    return make_city(zones=4, sensors_per_system=12, days=7, seed=7)


def test_requests_during_an_outage_are_found_only_with_the_other_systems(city):
    alone = detect_anomalies(city["services"].to_dataset())
    both = detect_anomalies(city)
    srv = both[both["system"] == "services"]
    added = srv.merge(alone, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
    assert len(added) > 0
    sources = both[both["variable"].isin(["electric_load", "data_traffic", "connected_devices", "water_pressure"])
                   & (both["score"] < 0)]
    for r in added.itertuples():  # each added run overlaps a drop of a named source in its zone
        s = sources[sources["zone"] == r.zone]
        assert ((s["start"] - H <= r.end) & (s["end"] + H >= r.start)).any()
    events, _ = ground_truth(city)
    ev = events[events["system"] == "services"]
    for r in added.itertuples():  # and lies on a services event of its zone (outage or leak)
        e = ev[ev["zone"] == r.zone]
        assert ((e["start"] - H <= r.end) & (e["end"] + H >= r.start)).any()
    # without the registry's corroboration the lower bar is never used
    off = detect_anomalies(city, thresholds={"service_requests": {"anomaly_corroborated_by": None}})
    pd.testing.assert_frame_equal(off[off["system"] == "services"].reset_index(drop=True), alone)


def test_lazy_tables_equal_detect_anomalies_with_corroborated_rows():
    import dask

    from workbench.integration._anomalies import gather_anomalies, lazy_anomalies

    city = make_city(zones=4, sensors_per_system=12, days=7, seed=7, chunks={"sensor": 5})
    want = detect_anomalies(city)
    alone = detect_anomalies(city["services"].to_dataset())
    assert (want["system"] == "services").sum() > len(alone)  # corroborated rows are in the table
    got = gather_anomalies(dask.compute(lazy_anomalies(city))[0])
    pd.testing.assert_frame_equal(got, want)


# -- the absolute test (anomaly_absolute_effect): an event over every zone ----------------------

def test_absolute_slow_departure_scores_without_recalibration():
    import numpy as np

    from workbench.perception._contrast import contrast

    n = 200
    slow = np.zeros((2, n))
    slow[:, 80:140] = 7.0  # every zone 7 degC over normal for a while: no contrast with the city
    score = np.zeros((2, n))
    s_off, _ = contrast(score, slow.copy(), slow, slow.min(axis=0), floor=0.1)
    assert np.abs(s_off).max() == 0.0  # the contrast is blind to it
    s_on, e_on = contrast(score, slow.copy(), slow, slow.min(axis=0), floor=0.1, absolute=6.0, bar=5.0)
    assert np.allclose(s_on[:, 80:140], 5.0 * 7.0 / 6.0) and np.all(s_on[:, :80] == 0) and np.all(s_on[:, 140:] == 0)
    assert np.allclose(e_on[:, 80:140], 7.0)
    e_short = slow.copy()
    e_short[:, 120:] = 0.0  # the hourly departure ended: the slow window does not carry the effect on
    _, e_cut = contrast(score, e_short, slow, slow.min(axis=0), floor=0.1, absolute=6.0, bar=5.0)
    assert np.all(e_cut[:, 120:140] == 0.0)
    mild = np.where(slow > 0, 5.0, 0.0)  # below the absolute bar: under the detector's threshold
    s_low, _ = contrast(score, mild.copy(), mild, mild.min(axis=0), floor=0.1, absolute=6.0, bar=5.0)
    assert s_low.max() == 0.0  # left to the other tests (here: none)
    s_up, _ = contrast(score, -slow, -slow, (-slow).min(axis=0), floor=0.1, absolute=6.0, direction="up")
    assert s_up.max() <= 0.0  # a cold departure is not kept for a rises-only variable


def _heatwave(city, dT=7.0, day=12, days=3):
    """``city`` with every zone ``dT`` warmer for ``days`` (12 h ramps), and the span."""
    import numpy as np
    import xarray as xr

    env = city["environment"].to_dataset()
    t = pd.DatetimeIndex(env["time"].to_numpy())
    t0 = t[0] + pd.Timedelta(days=day)
    t1 = t0 + pd.Timedelta(days=days)
    h = np.asarray((t - t0) / H)
    ramp = np.clip(np.minimum(h, np.asarray((t1 - t) / H)) / 12.0, 0.0, 1.0)
    hot = city.copy()
    env["air_temperature"] = env["air_temperature"] + dT * xr.DataArray(ramp, dims="time", coords={"time": env["time"]})
    hot["environment"] = xr.DataTree(env)
    return hot, t0, t1


def test_a_heatwave_over_every_zone_is_found_and_fronts_alone_are_not():
    """Seed 4 of this small event-free city is one where the temporal scan alone misses an
    injected all-zone heatwave of +7 degC (fronts of the same month make it look ordinary on
    the recalibrated scales) and the zone contrast is blind (every zone is hit)."""
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    quiet = make_city(zones=4, sensors_per_system=4, days=28, seed=4, events=False)
    off = {"air_temperature": {"anomaly_absolute_effect": None}}
    assert not (detect_anomalies(quiet)["variable"] == "air_temperature").any()  # fronts alone: nothing
    hot, t0, t1 = _heatwave(quiet)

    def zones_hit(det):
        d = det[det["variable"] == "air_temperature"]
        inside = (d["end"] >= t0) & (d["start"] <= t1)
        assert not (~inside).any()  # nothing outside the heatwave
        return set(d.loc[inside, "zone"])

    assert zones_hit(detect_anomalies(hot)) == set(quiet["environment"]["zone"].to_numpy())
    assert zones_hit(detect_anomalies(hot, thresholds=off)) == set()
