"""Zone-complete blocks: cut within BLOCK_BYTES, and the results do not depend on the cut."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.perception import _zoned
from workbench.perception import anomaly_scores
from workbench.perception._zoned import _zone_chunks, zone_codes, zone_complete, zone_order


@pytest.fixture(scope="module")
def env():
    from workbench.synth import make_city

    city = make_city(zones=6, sensors_per_system=24, days=14, seed=10)
    return city["environment"].to_dataset()[["air_temperature", "no2"]].chunk({"sensor": 12})


def test_blocks_stay_within_block_bytes_and_hold_whole_zones(env, monkeypatch):
    codes = zone_codes(env)
    row = env["air_temperature"].sizes["time"] * 8
    big = zone_order(env, codes)[0]["air_temperature"].chunks[0]
    monkeypatch.setattr(_zoned, "BLOCK_BYTES", 5 * row)
    small, sorted_codes = zone_order(env, codes)
    chunks = small["air_temperature"].chunks[0]
    assert len(chunks) > len(big)  # cut finer than the input's chunk of 12 sensors
    assert zone_complete(sorted_codes, chunks)
    sizes = np.bincount(sorted_codes)
    # a block exceeds 5 sensors only when it is one zone
    assert all(c <= 5 or c in sizes for c in chunks)
    assert chunks == _zone_chunks(sorted_codes, 5)


def test_scores_do_not_depend_on_the_block_cut(env, monkeypatch):
    a = anomaly_scores(env, zone_order=True).compute()
    monkeypatch.setattr(_zoned, "BLOCK_BYTES", 1)  # one zone per block
    b = anomaly_scores(env, zone_order=True)
    assert len(b["air_temperature_score"].chunks[0]) == 6
    b = b.compute()
    for v in ("air_temperature_score", "air_temperature_effect", "no2_score", "no2_z", "air_temperature_qc"):
        np.testing.assert_array_equal(a[v].values, b[v].values)


@pytest.mark.parametrize("axis", [0, 1])
def test_gather_rows_equals_take(axis):
    import dask.array as dsa

    from workbench.perception._zoned import gather_rows

    rng = np.random.default_rng(3)
    x = rng.standard_normal((23, 17)) if axis == 0 else rng.standard_normal((5, 23))
    d = dsa.from_array(x, chunks=(7, 6) if axis == 0 else (2, 9))
    order = rng.permutation(23)
    got = gather_rows(d, order, (4, 11, 8), axis=axis)
    assert got.chunks[axis] == (4, 11, 8)
    np.testing.assert_array_equal(got.compute(), np.take(x, order, axis=axis))


def test_zone_order_keeps_variables_coords_and_values(env):
    codes = zone_codes(env)
    out, sorted_codes = zone_order(env, codes)
    order = np.argsort(codes, kind="stable")
    assert list(out.data_vars) == list(env.data_vars)
    assert list(out["sensor"].values) == list(env["sensor"].values[order])
    for v in env.data_vars:
        assert out[v].attrs == env[v].attrs
        np.testing.assert_array_equal(out[v].values, env[v].values[order])
    assert zone_complete(sorted_codes, out["no2"].chunks[0])


def test_blocks_keep_the_input_chunk_off_this_process(env, monkeypatch):
    from workbench._options import scheduler_context

    codes = zone_codes(env)
    monkeypatch.setattr(_zoned, "BLOCK_BYTES", 1)
    with scheduler_context("threads"):
        local = zone_order(env, codes)[0]["no2"].chunks[0]
    with scheduler_context("processes"):
        away = zone_order(env, codes)[0]["no2"].chunks[0]
    assert len(local) == 6  # one zone a block
    assert away == _zone_chunks(np.sort(codes, kind="stable"), 12)  # the input's 12-sensor chunks
