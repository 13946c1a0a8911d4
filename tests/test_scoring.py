"""Scoring on hand-made tables: matching keys, tolerance, fragmentation, time to detect."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.scoring import match_table, score, score_by


def _t(rows):
    df = pd.DataFrame(rows, columns=["kind", "system", "zone", "sensor", "start", "end"])
    df["start"], df["end"] = pd.to_datetime(df["start"]), pd.to_datetime(df["end"])
    return df


TRUTH = _t([
    ("gap", "water", "Z01", "W1", "2026-07-06 01:00", "2026-07-06 03:00"),
    ("spike", "water", "Z01", "W2", "2026-07-06 05:00", "2026-07-06 05:00"),
    ("drift", "energy", "Z02", "E1", "2026-07-07 00:00", "2026-07-09 00:00"),
])


def test_perfect_detection():
    s = score(TRUTH, TRUTH, by=["system", "sensor", "kind"])
    assert (s["precision"], s["recall"], s["f1"]) == (1.0, 1.0, 1.0)
    assert s["median_time_to_detect"] == pd.Timedelta(0)


def test_false_positive_and_miss():
    det = _t([
        ("gap", "water", "Z01", "W1", "2026-07-06 01:30", "2026-07-06 02:00"),  # hit, 30 min late
        ("gap", "water", "Z01", "W9", "2026-07-06 01:30", "2026-07-06 02:00"),  # wrong sensor
    ])
    s = score(det, TRUTH, match="sensor")
    assert s["precision"] == 0.5 and s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert s["median_time_to_detect"] == pd.Timedelta("30min")
    assert (s["false_positives"], s["false_negatives"]) == (1, 2)


def test_tolerance_widens_the_overlap():
    det = _t([("spike", "water", "Z01", "W2", "2026-07-06 05:45", "2026-07-06 05:45")])
    assert score(det, TRUTH, match="sensor", tolerance="30min")["true_positives"] == 0
    assert score(det, TRUTH, match="sensor", tolerance="1h")["true_positives"] == 1


def test_fragments_neither_rewarded_nor_punished():
    det = _t([("drift", "energy", "Z02", "E1", f"2026-07-0{d} 06:00", f"2026-07-0{d} 08:00") for d in (7, 8)])
    s = score(det, TRUTH, match="sensor")
    assert s["precision"] == 1.0 and s["recalled"] == 1 and s["true_positives"] == 2


def test_zone_matching_ignores_the_sensor():
    truth = _t([("water_leak", "water", "Z01", "", "2026-07-06 00:00", "2026-07-06 12:00")])
    det = _t([("anomaly", "water", "Z01", "W7", "2026-07-06 03:00", "2026-07-06 04:00"),
              ("anomaly", "water", "Z02", "W8", "2026-07-06 03:00", "2026-07-06 04:00")])
    s = score(det, truth, match="zone")
    assert s["precision"] == 0.5 and s["recall"] == 1.0


def test_kind_and_zone_for_incidents():
    truth = _t([("power_outage", "", "Z01", "", "2026-07-06 00:00", "2026-07-06 01:00")])
    det = _t([("power_outage", "", "Z01", "", "2026-07-06 00:15", "2026-07-06 00:30"),
              ("heatwave", "", "Z01", "", "2026-07-06 00:15", "2026-07-06 00:30")])
    s = score(det, truth, by=["kind", "zone"])
    assert s["precision"] == 0.5 and s["recall"] == 1.0


def test_empty_tables():
    empty = TRUTH.iloc[:0]
    assert score(empty, TRUTH)["recall"] == 0.0 and score(empty, TRUTH)["precision"] == 1.0
    assert score(TRUTH, empty)["recall"] == 1.0 and score(TRUTH, empty)["precision"] == 0.0
    assert score(empty, empty)["f1"] == 1.0


def test_score_by_kind_and_match_table():
    det = TRUTH.iloc[[0, 2]]
    per = score_by(det, TRUTH, "kind", by=["system", "sensor", "kind"]).set_index("kind")
    assert per.loc["gap", "recall"] == 1.0 and per.loc["spike", "recall"] == 0.0 and per.loc["drift", "f1"] == 1.0
    m = match_table(det, TRUTH, by=["system", "sensor"])
    assert sorted(m["truth"]) == [0, 2]


def test_missing_column_is_a_clear_error():
    with pytest.raises(KeyError, match="detected table lacks column"):
        score(TRUTH.drop(columns="sensor"), TRUTH, match="sensor")
    with pytest.raises(ValueError, match="match must be one of"):
        score(TRUTH, TRUTH, match="nope")
