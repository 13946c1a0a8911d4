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
    assert corroborated_bar(thresholds_for("electric_load")) is None


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
