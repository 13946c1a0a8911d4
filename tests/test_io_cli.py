from __future__ import annotations

import json

import pyarrow.parquet as pq

from _io_helpers import FIXTURES
from workbench.cli import main
from workbench.io import read_city


def test_ingest_writes_cube_and_quarantine_and_prints_json(tmp_path, capsys):
    out = tmp_path / "city.zarr"
    code = main(["ingest", str(FIXTURES / "longform.csv"), "--out", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["n_in"], report["n_accepted"], report["n_quarantined"]) == (18, 8, 10)
    assert report["reasons"]["duplicate_conflict"] == 4
    q = pq.read_table(tmp_path / "city.quarantine.parquet")
    assert q.num_rows == 10 and set(q.column("reason").to_pylist()) >= {"out_of_range", "unknown_unit"}
    city = read_city(out)
    assert float(city["energy"]["electric_load"].sel(sensor="feeder-002", time="2024-07-01T00:00").values) == 2100.0


def test_ingest_open311_with_zones_text_report(tmp_path, capsys):
    code = main(["ingest", str(FIXTURES / "open311_requests.xml"), "--out", str(tmp_path / "s.zarr"),
                 "--zones", str(FIXTURES / "zones.geojson")])
    text = capsys.readouterr().out
    assert code == 0 and "no_zone            3" in text and "accepted    4" in text


def test_ingest_exits_nonzero_when_nothing_read(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["ingest", str(bad), "--out", str(tmp_path / "x.zarr"), "--format", "ngsi-ld"]) == 1
    assert "bad.json: not valid JSON" in capsys.readouterr().err
    none = tmp_path / "none.csv"
    none.write_text("sensor,time,variable,value\ns,2024-01-01T00:00Z,mood,3\n", encoding="utf-8")
    assert main(["ingest", str(none), "--out", str(tmp_path / "y.zarr"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reasons"]["unknown_variable"] == 1
    assert not (tmp_path / "y.zarr").exists()
