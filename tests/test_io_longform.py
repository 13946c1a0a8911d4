from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _io_helpers import FIXTURES, assert_same_cube, reconciles, sample_cube
from workbench.io import ReadError, read_long, read_observations, to_long


def test_fixture_values_units_and_reasons():
    cube, r = read_observations(FIXTURES / "longform.csv")
    assert (r.n_in, r.n_accepted, r.n_quarantined, r.n_duplicates_merged) == (18, 8, 10, 1)
    assert {k: v for k, v in r.reasons.items() if v} == {
        "missing_sensor": 1, "unknown_variable": 1, "unparseable_time": 1, "non_numeric_value": 1,
        "unknown_unit": 1, "out_of_range": 1, "duplicate_conflict": 4,
    }
    load = cube["energy"]["electric_load"]
    assert load.attrs["units"] == "kW" and load.attrs["system"] == "energy"
    assert load.sel(sensor="feeder-001", time="2024-07-01T01:00").item() == pytest.approx(1480.0)  # 1480000 W
    # 02:00+02:00 is 00:00 UTC, same instant as row 1 but a different value: both quarantined
    assert load.sel(sensor="feeder-001", time="2024-07-01T00:00").isnull().item()
    assert load.sel(sensor="feeder-002", time="2024-07-01T00:00").item() == pytest.approx(2100.0)  # 2.1 MW
    temp = cube["environment"]["air_temperature"]
    assert temp.sel(sensor="wx-01", time="2024-07-01T00:00").item() == pytest.approx(20.0)  # 68 °F
    assert temp.attrs["standard_name"] == "air_temperature"
    assert cube["water"]["water_flow"].sel(sensor="dma-7").values.tolist() == [pytest.approx(90.0)]  # 25 l/s
    env = cube["environment"]
    assert env["zone"].values.tolist() == ["Z01"] and env["lat"].item() == 50.03
    assert str(env["time"].dtype) == "datetime64[ns]" and env["air_temperature"].dims == ("sensor", "time")
    q = r.quarantined.set_index("row")
    assert q.loc[17, "reason"] == "out_of_range" and q.loc[18, "reason"] == "unknown_unit"
    assert q.loc[14, "reason"] == "missing_sensor" and q.loc[13, "reason"] == "unparseable_time"


def test_roundtrip_csv_and_parquet(tmp_path):
    cube = sample_cube()
    long = to_long(cube)
    assert set(long["variable"]) == {"electric_load", "air_temperature", "no2", "water_flow", "water_pressure"}
    long.to_csv(tmp_path / "c.csv", index=False)
    long.to_parquet(tmp_path / "c.parquet")
    for name in ("c.csv", "c.parquet"):
        back, r = read_observations(tmp_path / name)
        assert r.n_in == len(long) == r.n_accepted and r.n_quarantined == 0
        assert_same_cube(cube, back)


def test_roundtrip_reading_twice_is_identical():
    a, ra = read_long(FIXTURES / "longform.csv")
    b, rb = read_long(FIXTURES / "longform.csv")
    assert_same_cube(a, b)
    assert ra.sha256 == rb.sha256 and len(ra.sha256) == 64


def test_newcastle_shape_with_preset_detected():
    cube, r = read_observations(FIXTURES / "newcastle_uo.csv")
    assert (r.n_in, r.n_accepted) == (8, 6)
    assert r.reasons["unknown_variable"] == 1 and r.reasons["non_numeric_value"] == 1
    env = cube["environment"]
    assert env["no2"].sel(sensor="PER_AIRMON_MONITOR1001", time="2024-03-01T10:15").item() == 33.0
    assert env["lon"].sel(sensor="PER_EMOTE_2405").item() == pytest.approx(-1.6231)
    assert env["lat"].sel(sensor="PER_EMOTE_2405").item() == pytest.approx(54.9781)
    assert r.n_flagged_by_source == 1
    assert r.flagged.iloc[0]["variable"] == "pm25" and str(r.flagged.iloc[0]["time"]) == "2024-03-01 10:15:00"


def test_newcastle_local_time_zone():
    cube, _ = read_long(FIXTURES / "newcastle_uo.csv", naive_tz="Europe/London", mapping="newcastle")
    assert str(cube["environment"]["time"].values[0])[:16] == "2024-03-01T10:00"  # GMT in March = UTC


def test_aot_shape_sensor_id_from_two_columns():
    cube, r = read_observations(FIXTURES / "aot_digest.csv")
    assert (r.n_in, r.n_accepted, r.reasons["unknown_variable"], r.reasons["non_numeric_value"]) == (7, 4, 2, 1)
    t = cube["environment"]["air_temperature"]
    assert sorted(t["sensor"].values) == ["001e0610aaaa:htu21d", "001e0610aaaa:tsys01", "001e0610bbbb:bmp180"]
    assert t.sel(sensor="001e0610aaaa:tsys01", time="2019-01-15T06:00:25").item() == -3.2


def test_explicit_mapping_and_bad_mapping(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("id,when,what,reading\ns1,2024-01-01T00:00Z,load,3\n", encoding="utf-8")
    cube, r = read_long(p, mapping={"sensor": "id", "time": "when", "variable": "what", "value": "reading"})
    assert r.n_accepted == 1 and cube["energy"]["electric_load"].item() == 3.0
    with pytest.raises(ReadError, match="not a long-format table"):
        read_long(p)
    with pytest.raises(ReadError, match="columns 'nope' not found"):
        read_long(p, mapping={"sensor": "nope", "time": "when", "variable": "what", "value": "reading"})


def test_malformed_rows_and_bad_bytes_are_quarantined_not_lost(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(
        b"sensor,time,variable,value,unit\n"
        b"s1,2024-01-01T00:00Z,electric_load,3,kW\n"
        b"s1,2024-01-01T01:00Z,electric_load,4,kW,extra,fields\n"
        b"s\xff\xfe1,2024-01-01T02:00Z,electric_load,5,kW\n"
        b"s1,2024-01-01T03:00Z\n"
    )
    cube, r = read_long(p)
    assert r.n_in == 4 and reconciles(r)
    assert r.reasons["malformed_record"] == 2  # too many fields, too few fields
    assert sorted(r.quarantined["row"]) == [2, 4]
    assert r.n_accepted == 2  # the sensor id with replaced bytes is still a sensor id
    assert "s\ufffd\ufffd1" in set(cube["energy"]["sensor"].values)


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_file_is_a_read_error(tmp_path, content):
    p = tmp_path / "e.csv"
    p.write_bytes(content)
    with pytest.raises(ReadError, match="e.csv"):
        read_long(p)


def test_broken_parquet_is_a_read_error(tmp_path):
    p = tmp_path / "x.parquet"
    p.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ReadError, match="not a readable Parquet file"):
        read_long(p)


def test_streaming_in_small_blocks_gives_the_same_cube(tmp_path):
    long = to_long(sample_cube(seed=4))
    long.to_csv(tmp_path / "c.csv", index=False)
    whole, r1 = read_long(tmp_path / "c.csv")
    blocks, r2 = read_long(tmp_path / "c.csv", block_size=512)
    assert_same_cube(whole, blocks)
    assert r1.to_dict()["n_accepted"] == r2.to_dict()["n_accepted"] == len(long)


_cell = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["NaN", "inf", "-inf", "1e308", "1e400", "", "kW", "W", "°F", "electric_load", "temperature",
                     "2024-01-01T00:00:00Z", "2024-01-01T05:00:00+05:00", "2024-01-01T00:00:00-0700", "2023/12/31 23:00:00"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(_cell, min_size=0, max_size=7), max_size=12),
    cut=st.integers(min_value=0, max_value=400),
    junk=st.binary(max_size=6),
    swap=st.booleans(),
)
def test_property_corrupted_csv_reconciles_or_read_error(tmp_path, rows, cut, junk, swap):
    header = ["sensor", "time", "variable", "value", "unit"]
    if swap:
        header[1], header[3] = header[3], header[1]
    lines = [",".join(header)] + [",".join(c.replace(",", ";").replace("\n", " ").replace("\r", " ").replace('"', "'") for c in r) for r in rows]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    data = data[: len(lines[0]) + 1 + cut] + junk
    p = tmp_path / "fuzz.csv"
    p.write_bytes(data)
    try:
        cube, r = read_long(p)
    except ReadError as exc:
        assert "fuzz.csv" in str(exc)
        return
    assert reconciles(r)
    n_values = sum(int(ds["sensor"].size and np.isfinite(ds[v].values).sum()) for ds in (n.to_dataset() for n in cube.children.values()) for v in ds.data_vars)
    assert n_values == r.n_accepted - r.n_duplicates_merged
