"""The benchmark harness and the pandas twins it compares against (benchmarks/).

A pandas twin is only a fair yardstick if it does the same work: the pipeline twin's city
state (zone roll-ups, hourly means, the six KPIs) and zone residual signals must equal
``workbench.run``'s own, and its vectorised helpers must equal the plain recipes they replace.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("zarr")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the benchmarks package lives next to the library, not in it
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, small_city):
    from workbench.io import write_city

    path = tmp_path_factory.mktemp("bench") / "city.zarr"
    write_city(small_city, path, progress=False)
    return path


def _loop_runs(mask: pd.DataFrame) -> pd.DataFrame:
    """Run length per cell, one column at a time (the recipe ``pd_runs`` vectorises)."""
    out = {}
    for c in mask.columns:
        s = mask[c]
        out[c] = s.groupby((s != s.shift()).cumsum()).transform("size").where(s, 0)
    return pd.DataFrame(out)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.95])
def test_pd_runs_equals_the_column_loop(p):
    from benchmarks.bench_perception import pd_runs

    rng = np.random.default_rng(1)
    mask = pd.DataFrame(rng.random((400, 9)) < p)
    assert (pd_runs(mask).to_numpy() == _loop_runs(mask).to_numpy()).all()


@pytest.mark.parametrize("merge", [0, 1, 4])
def test_pandas_runs_match_perception_runs(merge):
    from benchmarks.bench_pipeline import pandas_runs
    from workbench.perception._runs import _runs

    rng = np.random.default_rng(merge)
    mk = rng.random((6, 300)) < 0.08  # sensor × time
    z = rng.normal(size=mk.shape)
    score = rng.normal(size=mk.shape)
    time = pd.date_range("2026-01-01", periods=300, freq="15min")
    frame = lambda a: pd.DataFrame(a.T, index=time, columns=[f"S{i}" for i in range(6)])  # noqa: E731
    got = pandas_runs(frame(mk), frame(z), frame(score), merge=merge)
    want = _runs(mk, merge)
    assert [(int(s[1:]), time.get_loc(a), time.get_loc(b)) for s, a, b in zip(got["sensor"], got["start"], got["end"])] == want
    for (i, a, b), sev, sc in zip(want, got["severity"], got["score"]):
        hit = mk[i, a:b + 1]
        assert sev == np.abs(z[i, a:b + 1][hit]).max()
        assert sc == score[i, a:b + 1][hit][np.argmax(np.abs(score[i, a:b + 1][hit]))]


def test_pandas_lindley_equals_the_recursion():
    from benchmarks.bench_pipeline import pandas_lindley
    from workbench.analysis.kpis import _lindley

    rng = np.random.default_rng(0)
    a = rng.exponential(1.0, size=(3, 500))
    a[rng.random(a.shape) < 0.1] = np.nan
    c = np.array([0.8, 1.0, 1.3])
    got = pandas_lindley(pd.DataFrame(a.T), pd.Series(c))
    np.testing.assert_allclose(got.to_numpy().T, _lindley(a, c), rtol=1e-10, atol=1e-9)


def test_pipeline_twin_state_and_signals_equal_the_workbench(small_store):
    """Same work: every state variable (values, completeness, KPIs) and every zone residual
    signal of the pandas twin equals the workbench's."""
    from benchmarks.bench_pipeline import PANDAS_STAGES, _pipeline_pandas
    from workbench.integration.incidents import zone_signals
    from workbench.integration.state import city_state
    from workbench.io import read_city

    class Ctx:
        store = small_store

    out = _pipeline_pandas(Ctx())
    assert set(out["stage_seconds"]) == set(PANDAS_STAGES)
    tree = read_city(small_store)
    state = city_state(tree).compute()
    assert set(out["state"]) == set(state.data_vars)
    for name, frame in out["state"].items():
        want = state[name].transpose("time", "zone").to_pandas()[frame.columns]
        np.testing.assert_allclose(frame.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    signals = zone_signals(tree).compute()
    assert {v for v in out["signals"]} == {v for v in signals.data_vars if not v.startswith("n_")}
    for name, (median, count) in out["signals"].items():
        want = signals[name].transpose("time", "zone").to_pandas()[median.columns]
        assert want.to_numpy().dtype == np.float32  # the workbench holds the zone signals as float32
        np.testing.assert_allclose(median.to_numpy(), want.to_numpy(), rtol=2e-7, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(count.to_numpy(), signals[f"n_{name}"].transpose("time", "zone").to_pandas()[count.columns].to_numpy())
    an = out["anomalies"]
    assert {"sensor", "start", "end", "severity", "score", "zone", "system", "variable"} <= set(an.columns)


def test_harness_modes_and_pandas_size():
    from benchmarks._harness import Scenario, _mode_fn, _pandas_sensors

    def run(ctx):
        return "wb"

    def twin(ctx):
        return "pd"

    def light(ctx):
        return "light"

    sc = Scenario(stage="x", sensors=10_000, days=7, run=run, pandas=twin, pandas_variants=(("light", light),),
                  pandas_max_sensors=1_000)
    assert [_mode_fn(sc, m)(None) for m in ("workbench", "pandas", "pandas:light")] == ["wb", "pd", "light"]
    assert _pandas_sensors(sc) == 1_000
    assert _pandas_sensors(Scenario(stage="x", sensors=500, days=7, run=run, pandas_max_sensors=1_000)) == 500
    assert _pandas_sensors(Scenario(stage="x", sensors=500, days=7, run=run)) == 500


def test_a_cached_store_of_an_older_chunk_rule_is_stale(small_store, tmp_path):
    from benchmarks._harness import stale_chunks
    from workbench.io import write_city
    from workbench.synth import make_city

    assert not stale_chunks(small_store)
    other = tmp_path / "other.zarr"
    write_city(make_city(zones=4, sensors_per_system=8, days=14, seed=3, chunks={"sensor": 3, "time": 14 * 96}), other,
               progress=False)
    assert stale_chunks(other)


def test_a_cached_store_of_an_older_codec_is_stale(tmp_path, monkeypatch):
    import workbench.io.store as store
    from benchmarks._harness import stale_chunks
    from workbench.synth import make_city

    city = make_city(zones=4, sensors_per_system=8, days=14, seed=3)
    assert not stale_chunks(store.write_city(city, tmp_path / "now.zarr", progress=False))
    monkeypatch.setattr(store, "_zarr_encoding", lambda city: {})  # zarr's default codec (zstd)
    assert stale_chunks(store.write_city(city, tmp_path / "zstd.zarr", progress=False))


def test_city_state_twin_equals_the_workbench(small_store):
    """The city_state stage's pandas twin does the state's work: every variable equal."""
    from benchmarks.bench_integration import _state_pandas
    from workbench.integration.state import city_state
    from workbench.io import read_city

    class Ctx:
        store = small_store

    out = _state_pandas(Ctx())
    state = city_state(read_city(small_store)).compute()
    assert set(out) == set(state.data_vars)
    for name, frame in out.items():
        want = state[name].transpose("time", "zone").to_pandas()[frame.columns]
        np.testing.assert_allclose(frame.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_incidents_stage_inputs_are_the_runs_own(small_store, tmp_path, monkeypatch):
    """The incidents stage, fed the cached products of the one pass, gives ``workbench.run``'s
    incidents and alerts."""
    import benchmarks.bench_integration as bi
    import workbench

    monkeypatch.setattr(bi, "prepare_store", lambda sensors, days: small_store)
    monkeypatch.setattr(bi, "inputs_path", lambda sensors, days: tmp_path / "inputs.pkl")

    class Ctx:
        sensors, days = 1, 1

        def open(self):
            from workbench.io import read_city

            return read_city(small_store)

    assert bi.build_inputs(1, 1) == tmp_path / "inputs.pkl"
    ctx = Ctx()
    ctx.state = bi._inputs(ctx)
    incidents, alerts = bi._incidents(ctx)
    want = workbench.run(small_store, progress=False)
    assert len(want.incidents) > 0
    pd.testing.assert_frame_equal(incidents, want.incidents)
    drop = [c for c in ("id", "identifier", "sent", "run_id") if c in alerts.columns]
    pd.testing.assert_frame_equal(alerts.drop(columns=drop), want.alerts.drop(columns=drop))


def test_summary_table_lists_every_stage_and_size(tmp_path):
    """A measured row shows its numbers; a stage never measured says so instead of vanishing."""
    import json

    from benchmarks.summary import SIZES, STAGES, table

    row = {"stage": "pipeline", "sensors": 1_000, "days": 365, "scheduler": "threads", "seconds": 8.44, "cpu_s": 13.2,
           "peak_rss_mb": 358.4, "mem_ratio": 0.688, "vs_pandas": 11.43, "vs_floor": 30.53, "floor": "io", "commit": "abc1234"}
    (tmp_path / "bench_pipeline.json").write_text(json.dumps([row]))
    text = table(tmp_path)
    lines = text.splitlines()[2:]
    assert len(lines) == len(STAGES) * len(SIZES)
    assert "| pipeline | 1,000 × 365 | threads | 8.44 | 13.2 | 358 | 0.688 | 11.4× | 30.5× io | abc1234 |" in lines
    assert "| pipeline | 10,000 × 365 | — | not measured | | | | | | |" in lines
    assert sum("not measured" in line for line in lines) == len(lines) - 1
