"""Alignment: regular grid, honest gap filling up to max_gap, marks in <var>_qc."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench.perception import align, quality_flags


def _ds(times, values):
    return xr.Dataset({"electric_load": (("sensor", "time"), np.atleast_2d(values), {"units": "kW", "long_name": "electric load"})},
                      coords={"sensor": ["E1"], "time": pd.to_datetime(times), "zone": ("sensor", ["Z01"])})


def test_fills_short_gaps_only_and_marks_them():
    t = pd.date_range("2026-07-06", periods=20, freq="15min")
    keep = np.r_[0:3, 5:8, 15:20]  # a 2-step hole (30 min) and a 7-step hole
    out = align(_ds(t[keep], np.arange(20.0)[keep]), freq="15min", max_gap="30min")
    v, qc = out["electric_load"].values[0], out["electric_load_qc"].values[0]
    assert len(v) == 20
    np.testing.assert_allclose(v[3:5], [3.0, 4.0])
    assert (qc[3:5] == 128).all() and (qc[:3] == 0).all()
    assert np.isnan(v[8:15]).all() and (qc[8:15] == 0).all()
    flagged = quality_flags(out)["electric_load_qc"].values[0]
    assert (flagged[3:5] & 128).all() and (flagged[8:15] & 2).all()


def test_irregular_and_repeated_times_are_binned():
    t = ["2026-07-06 00:01", "2026-07-06 00:07", "2026-07-06 00:20", "2026-07-06 00:20", "2026-07-06 00:50"]
    out = align(_ds(t, [1.0, 3.0, 10.0, 20.0, 7.0]), freq="15min", max_gap="0min")
    assert list(out.indexes["time"].strftime("%H:%M")) == ["00:00", "00:15", "00:30", "00:45"]
    np.testing.assert_allclose(out["electric_load"].values[0], [2.0, 15.0, np.nan, 7.0])


def test_edges_are_never_filled():
    t = pd.date_range("2026-07-06", periods=6, freq="15min")
    out = align(_ds(t, [np.nan, 1.0, 2.0, 3.0, np.nan, np.nan]), freq="15min", max_gap="1h")
    v = out["electric_load"].values[0]
    assert np.isnan(v[0]) and np.isnan(v[-1])


@pytest.mark.parametrize("chunked", [False, True])
def test_align_city_lazy_and_eager_agree(small_city, chunked):
    ds = small_city["water"].to_dataset()
    ds = ds if chunked else ds.compute()
    with raise_if_dask_computes():
        out = align(ds, freq="1h", max_gap="2h")
    assert out.sizes["time"] == ds.sizes["time"] // 4
    assert (out["water_flow_qc"].chunks is not None) is chunked
    assert "align" in out.attrs["history"]
