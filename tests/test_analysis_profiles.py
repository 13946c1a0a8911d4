"""Profiles and deseasonalize: equal to pandas to 1e-9, lazy, metadata-carrying."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench.analysis import deseasonalize, profile


@pytest.fixture(scope="module")
def load(small_city):
    da = small_city["energy"]["electric_load"].compute()
    da[0, 10:20] = np.nan  # a gap: skipped like pandas skips it
    return da


def _frame(da: xr.DataArray) -> pd.DataFrame:
    return pd.DataFrame(da.values.T, index=da.indexes["time"], columns=da["sensor"].values)


def _maybe_chunk(da, chunked):
    return da.chunk({"sensor": 3}) if chunked else da


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("by", ["hour", "timeofday", "dayofweek", "hourofweek", "month"])
def test_profile_mean_equals_pandas(load, by, chunked):
    da = _maybe_chunk(load, chunked)
    with raise_if_dask_computes():
        p = profile(da, by=by)
    df = _frame(load)
    t = df.index
    keys = {
        "hour": t.hour, "timeofday": t.hour + t.minute / 60.0, "dayofweek": t.day_of_week,
        "hourofweek": t.day_of_week * 24 + t.hour, "month": t.month,
    }[by]
    want = df.groupby(np.asarray(keys)).mean()
    got = p.sel({by: want.index.to_numpy()}).transpose(by, "sensor").values
    np.testing.assert_allclose(got, want.to_numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("chunked", [False, True])
def test_profile_median_quantiles_and_daytype_equal_pandas(load, chunked):
    da = _maybe_chunk(load, chunked)
    with raise_if_dask_computes():
        med = profile(da, by="hour", stat="median", daytype=True)
        q = profile(da, by="hour", stat=[0.1, 0.9])
    df = _frame(load)
    wk = np.where(df.index.day_of_week >= 5, "weekend", "weekday")
    want = df.groupby([wk, df.index.hour]).median()
    for dt in ("weekday", "weekend"):
        np.testing.assert_allclose(med.sel(daytype=dt).transpose("hour", "sensor").values, want.loc[dt].to_numpy(), atol=1e-9)
    wq = df.groupby(df.index.hour).quantile(0.9)
    np.testing.assert_allclose(q.sel(quantile=0.9).transpose("hour", "sensor").values, wq.to_numpy(), atol=1e-9)


@pytest.mark.parametrize("chunked", [False, True])
def test_deseasonalize_equals_pandas(load, chunked):
    da = _maybe_chunk(load, chunked)
    with raise_if_dask_computes():
        an = deseasonalize(da)
        ratio = deseasonalize(da, by="hour", daytype=False, kind="ratio")
    df = _frame(load)
    t = df.index
    key = [np.where(t.day_of_week >= 5, 1, 0), t.hour * 60 + t.minute]
    want = df - df.groupby(key).transform("mean")
    np.testing.assert_allclose(an.transpose("time", "sensor").values, want.to_numpy(), atol=1e-9)
    wr = df / df.groupby(t.hour).transform("mean")
    np.testing.assert_allclose(ratio.transpose("time", "sensor").values, wr.to_numpy(), atol=1e-9)
    assert an.dims == load.dims


@pytest.mark.parametrize("chunked", [False, True])
def test_dataset_profile_honours_flags_and_keeps_metadata(small_city, chunked):
    ds = small_city["energy"].to_dataset()
    ds = ds.chunk({"sensor": 4}) if chunked else ds.compute()
    qc = xr.zeros_like(ds["electric_load"], dtype=np.uint8).compute()
    qc[:, :4] = 8  # spike flag on the first hour of every sensor
    qc.attrs = {"flag_masks": [1, 2, 4, 8, 16, 32], "flag_meanings": "missing gap flatline spike out_of_range duplicate"}
    ds["electric_load_qc"] = qc
    with raise_if_dask_computes():
        p = profile(ds, by="hour")
        a = deseasonalize(ds)
    assert set(p.data_vars) == {"electric_load"} and set(a.data_vars) == {"electric_load"}
    raw = ds["electric_load"].compute()
    want = raw.isel(time=slice(4, None)).groupby("time.hour").mean().transpose("sensor", "hour")
    np.testing.assert_allclose(p["electric_load"].values, want.values, atol=1e-9)
    attrs = p["electric_load"].attrs
    assert attrs["units"] == "kW" and "diurnal profile" in attrs["long_name"]
    assert "profile(" in attrs["history"] and "by='hour'" in attrs["history"]
    assert "profile(" in p.attrs["history"]


def test_profile_rejects_bad_options(load):
    with pytest.raises(ValueError, match="by must be one of"):
        profile(load, by="fortnight")
    with pytest.raises(ValueError, match="stat must be one of"):
        profile(load, stat="mode")
    with pytest.raises(ValueError, match="quantiles must lie"):
        profile(load, stat=[1.5])
    with pytest.raises(ValueError, match="kind must be"):
        deseasonalize(load, kind="log")


def test_profile_on_zone_series(small_city):
    from workbench.analysis import to_zones

    z = to_zones(small_city["water"].to_dataset())
    with raise_if_dask_computes():
        p = profile(z["water_flow"], by="hourofweek")
    assert p.dims == ("zone", "hourofweek") and p.sizes["hourofweek"] == 168
    # morning peak above the night minimum in every zone
    pc = p.compute()
    assert (pc.sel(hourofweek=7) > 2 * pc.sel(hourofweek=3)).all()


@pytest.mark.parametrize("codes", ["runs", "random"])
def test_climatology_kernels_equal_a_plain_loop(codes):
    """Slot means and anomalies: gaps, a slot all missing, infinities, zero means, any code order."""
    from workbench.analysis._climatology import group_anomaly, group_mean, slot_runs

    rng = np.random.default_rng(7)
    ng, nt = 12, 300
    code = np.arange(nt) % ng if codes == "runs" else rng.integers(0, ng, nt)
    x = rng.normal(size=(3, 2, nt)).astype(np.float32)
    x[0, 0, ::7] = np.nan
    x[1, 1, code == 5] = np.nan  # a slot with no reading
    x[2, 0, 3] = np.inf
    x[2, 1, code == 2] = 0.0  # zero mean: the ratio is NaN there
    runs = slot_runs(code, ng)
    want = np.full(x.shape[:-1] + (ng,), np.nan)
    for idx in np.ndindex(*x.shape[:-1]):
        for g in range(ng):
            v = x[idx][code == g].astype(np.float64)
            v = v[~np.isnan(v)]
            if v.size:
                want[idx + (g,)] = v.sum() / v.size
    got = group_mean(x, runs, (3, 4))
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-12, equal_nan=True)
    an = group_anomaly(x, runs)
    m = np.where(want == 0, np.nan, want)[..., code]
    with np.errstate(invalid="ignore"):  # inf - inf in the reference, as in the kernel
        np.testing.assert_allclose(an, x - want[..., code], rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(group_anomaly(x, runs, ratio=True), x / m, rtol=1e-12, equal_nan=True)
    with pytest.raises(ValueError, match="slot codes"):
        slot_runs(code, 5)


@pytest.mark.parametrize("daytype", [False, True])
def test_expand_profile_is_one_take_per_block(load, daytype):
    """The expected series equals the profile looked up at each time; lazily, a few tasks per block."""
    from workbench.analysis.profiles import expand_profile

    da = load.chunk({"sensor": 4})
    with raise_if_dask_computes():
        prof = profile(da, by="timeofday", stat="median", daytype=daytype)
        got = expand_profile(prof, da, by="timeofday", daytype=daytype)
    assert got.dims == ("sensor", "time") and len(got.data.dask) < 20 * da.data.npartitions
    p = prof.compute()
    t = load.indexes["time"]
    idx = {"timeofday": xr.DataArray(t.hour + t.minute / 60.0, dims="time")}
    if daytype:
        idx["daytype"] = xr.DataArray(np.where(t.day_of_week >= 5, "weekend", "weekday"), dims="time")
    want = p.sel(idx)
    np.testing.assert_array_equal(got.values, want.transpose("sensor", "time").values)
    np.testing.assert_array_equal(expand_profile(p, load, by="timeofday", daytype=daytype).values, got.values)
