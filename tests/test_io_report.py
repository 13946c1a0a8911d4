from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from workbench.io import REASONS, IngestReport, ReadError, read_observations
from workbench.io._build import Collector, parse_times, to_float


def test_report_refuses_counts_that_do_not_reconcile():
    with pytest.raises(ValueError, match="does not reconcile"):
        IngestReport(source="x", sha256="", format="t", n_in=5, n_accepted=3, reasons={"unknown_variable": 1})


def test_report_unknown_reason_rejected():
    with pytest.raises(ValueError, match="unknown reasons"):
        IngestReport(source="x", sha256="", format="t", n_in=1, n_accepted=0, reasons={"bad vibes": 1})


def test_report_dict_json_and_parquet(tmp_path):
    rows = pd.DataFrame({"row": [1, 2, 3], "sensor": ["a", "a", "b"], "time": ["2024-01-01T00:00Z", "x", "2024-01-01T00:00Z"],
                         "variable": ["electric_load", "electric_load", "nope"], "value": ["1", "2", "3"], "unit": ["kW", "kW", ""]})
    c = Collector(source="mem", sha256="abc", format="test")
    c.add(rows)
    tree, report = c.finish()
    d = report.to_dict()
    assert (d["n_in"], d["n_accepted"], d["n_quarantined"]) == (3, 1, 2)
    assert d["reasons"]["unparseable_time"] == 1 and d["reasons"]["unknown_variable"] == 1
    assert set(d["reasons"]) == set(REASONS)
    assert json.loads(report.to_json())["sha256"] == "abc"
    path = report.write(tmp_path / "q.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 2
    assert table.column("reason").to_pylist() == ["unparseable_time", "unknown_variable"]
    assert json.loads(table.schema.metadata[b"workbench.ingest_report"])["n_in"] == 3
    assert float(tree["energy"]["electric_load"].values[0, 0]) == 1.0


def test_identical_duplicates_merged_conflicting_quarantined():
    rows = pd.DataFrame({"row": [1, 2, 3, 4, 5], "sensor": ["a"] * 5,
                         "time": ["2024-01-01T00:00Z", "2024-01-01T01:00+01:00", "2024-01-01T01:00Z", "2024-01-01T01:00Z", "2024-01-01T02:00Z"],
                         "variable": ["electric_load"] * 5, "value": ["1500", "1.5", "2", "3", "4"], "unit": ["W", "kW", "kW", "kW", "kW"]})
    c = Collector(source="mem", sha256="", format="test")
    c.add(rows)
    tree, r = c.finish()
    # rows 1 and 2 are the same instant and the same value after conversion: merged
    assert r.n_duplicates_merged == 1
    assert r.reasons["duplicate_conflict"] == 2
    assert (r.n_in, r.n_accepted) == (5, 3)
    da = tree["energy"]["electric_load"]
    assert da.sizes["time"] == 2
    assert da.sel(time="2024-01-01T00:00").item() == 1.5
    assert da.sel(time="2024-01-01T02:00").item() == 4.0
    assert sorted(r.quarantined["row"]) == [3, 4]


def test_parse_times_offsets_intervals_and_local_zone():
    t = parse_times(pd.Series(["2010-12-23T11:20:00-0700", "2014-12-31T11:59:59.00+08:00",
                               "2020-03-30T13:00:00.000Z/2020-03-30T14:00:00.000Z", "2018/08/25 00:00:00",
                               "9999-01-01T00:00:00Z", "", None, "soon"]))
    assert str(t.dtype) == "datetime64[ns]"
    assert [str(x)[:19] for x in t[:4]] == ["2010-12-23T18:20:00", "2014-12-31T03:59:59", "2020-03-30T13:00:00", "2018-08-25T00:00:00"]
    assert pd.isna(t[4:]).all()
    local = parse_times(pd.Series(["2024-07-01 12:00", "2024-01-01 12:00", "2024-03-31 02:30"]), naive_tz="Europe/Berlin")
    assert str(local[0])[:16] == "2024-07-01T10:00" and str(local[1])[:16] == "2024-01-01T11:00"
    assert pd.isna(local[2])  # does not exist: clocks jump from 02:00 to 03:00


def test_to_float_rejects_text_bools_nan_inf():
    out = to_float(pd.Series(["1.5", " 2 ", "NaN", "inf", "-1e400", "abc", None, True], dtype=object))
    assert out[0] == 1.5 and out[1] == 2.0
    assert pd.isna(out[2:]).all()


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ReadError, match="no such file"):
        read_observations(tmp_path / "nope.csv")
    with pytest.raises(ReadError, match="is a directory"):
        read_observations(tmp_path, format="long")
    with pytest.raises(ReadError, match="unknown format"):
        read_observations(tmp_path / "x.csv", format="excel")
