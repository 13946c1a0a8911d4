from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from _io_helpers import FIXTURES, assert_same_cube, reconciles, sample_cube
from workbench.io import ReadError, read_cf_timeseries, read_observations, to_cf_timeseries


def test_orthogonal_fixture():
    cube, r = read_observations(FIXTURES / "cf_timeseries.nc")
    assert (r.n_in, r.n_accepted) == (10, 10)  # 12 cells, 2 are _FillValue (not records)
    env = cube["environment"]
    assert env["sensor"].values.tolist() == ["wx-01", "wx-02"]
    assert env["air_temperature"].sel(sensor="wx-02", time="2024-07-01T02:00").item() == 19.75
    assert np.isnan(env["air_temperature"].sel(sensor="wx-01", time="2024-07-01T02:00").item())
    assert env["rainfall"].sel(sensor="wx-01", time="2024-07-01T02:00").item() == pytest.approx(1.4)  # "mm h-1"
    assert env["lat"].values.tolist() == [50.03, 50.01]


def test_contiguous_ragged_fixture_in_kelvin():
    cube, r = read_cf_timeseries(FIXTURES / "cf_timeseries_ragged.nc")
    assert (r.n_in, r.n_accepted) == (5, 5)
    t = cube["environment"]["air_temperature"]
    assert t.sel(sensor="wx-01").values.tolist()[:2] == pytest.approx([18.5, 18.0])
    assert t.sel(sensor="wx-02", time="2024-07-01T02:00").item() == pytest.approx(19.75)


def test_roundtrip_netcdf(tmp_path):
    cube = sample_cube(seed=3)
    to_cf_timeseries(cube).to_netcdf(tmp_path / "c.nc", engine="h5netcdf")
    back, r = read_cf_timeseries(tmp_path / "c.nc")
    assert r.n_quarantined == 0 and reconciles(r)
    assert_same_cube(cube, back)


def test_inf_is_quarantined(tmp_path):
    ds = xr.open_dataset(FIXTURES / "cf_timeseries.nc").load()
    ds["temp"][0, 0] = np.inf
    ds.to_netcdf(tmp_path / "inf.nc", engine="h5netcdf")
    _, r = read_cf_timeseries(tmp_path / "inf.nc")
    assert r.reasons["non_numeric_value"] == 1 and r.n_in == 10


def test_cdl_and_garbage_are_read_errors(tmp_path):
    p = tmp_path / "x.cdl"
    p.write_text("netcdf x {\n dimensions: time = 1 ;\n}\n", encoding="utf-8")
    with pytest.raises(ReadError, match="ncgen"):
        read_observations(p)
    q = tmp_path / "y.nc"
    q.write_bytes(b"CDF\x01garbage")
    with pytest.raises(ReadError, match="y.nc: cannot be opened as NetCDF"):
        read_observations(q)
