"""Forecasts and backtests: seasonal naive is exact, intervals are ordered, the driver model beats seasonal naive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench.analysis import backtest, forecast, to_zones


@pytest.fixture(scope="module")
def zoned_small(small_city):
    load = to_zones(small_city["energy"].to_dataset())["electric_load"].compute()
    temp = to_zones(small_city["environment"].to_dataset())["air_temperature"].compute()
    return load, temp


@pytest.mark.parametrize("chunked", [False, True])
def test_seasonal_naive_is_last_season(zoned_small, chunked):
    load, _ = zoned_small
    hist = load.isel(time=slice(0, -96))
    h = hist.chunk({"zone": 2}) if chunked else hist
    with raise_if_dask_computes():
        fc = forecast(h, horizon="1D", method="seasonal_naive", season="7D")
    np.testing.assert_array_equal(fc["forecast"].values, hist.isel(time=slice(-672, -672 + 96)).values)
    assert fc["forecast"].indexes["time"][0] == hist.indexes["time"][-1] + pd.Timedelta("15min")
    assert (fc["lower"] <= fc["forecast"]).all() and (fc["upper"] >= fc["forecast"]).all()


@pytest.mark.parametrize("chunked", [False, True])
def test_regression_forecast_lazy_with_metadata(zoned_small, chunked):
    load, temp = zoned_small
    hist = load.isel(time=slice(0, -96))
    h, d = (hist.chunk({"zone": 2}), temp.chunk({"zone": 2})) if chunked else (hist, temp)
    with raise_if_dask_computes():
        fc = forecast(h, horizon=96, drivers=d, interval=0.8)
    assert fc["forecast"].dims == ("zone", "time") and fc.sizes["time"] == 96
    assert fc["forecast"].attrs["units"] == "kW" and "forecast" in fc["forecast"].attrs["long_name"]
    assert "forecast('electric_load'" in fc.attrs["history"] and fc.attrs["drivers"] == "air_temperature"
    fc = fc.compute()
    assert bool(((fc["lower"] <= fc["forecast"]) & (fc["forecast"] <= fc["upper"])).all())
    truth = load.isel(time=slice(-96, None))
    assert float(np.abs(fc["forecast"] - truth).mean() / truth.mean()) < 0.15


def test_forecast_dataset_drivers_and_city_wide_driver(zoned_small):
    load, temp = zoned_small
    hist = load.isel(time=slice(0, -96))
    fc1 = forecast(hist, horizon="1D", drivers=xr.Dataset({"air_temperature": temp}))
    fc2 = forecast(hist, horizon="1D", drivers=temp.mean("zone").rename("t_city"))
    fc3 = forecast(hist, horizon="1D")
    for fc in (fc1, fc2, fc3):
        assert bool(fc["forecast"].notnull().all())
    with pytest.raises(ValueError, match="drivers must cover"):
        forecast(hist, horizon="1D", drivers=temp.isel(time=slice(0, -100)))
    with pytest.raises(ValueError, match="method must be"):
        forecast(hist, horizon="1D", method="prophet")


def test_backtest_structure_and_laziness(zoned_small):
    load, temp = zoned_small
    with raise_if_dask_computes():
        bt = backtest(load.chunk({"zone": 2}), drivers=temp.chunk({"zone": 2}), origins=2)
    assert bt["mae"].dims == ("model", "origin", "zone")
    bt = bt.compute()
    assert float(bt["skill"].sel(model="seasonal_naive").max()) == 0.0
    assert bool((bt["coverage"] >= 0).all() & (bt["coverage"] <= 1).all())
    assert bt["mape"].attrs["units"] == "%"
    with pytest.raises(ValueError, match="not enough history"):
        backtest(load, origins=8)


@pytest.fixture(scope="module")
def reference_city():
    from workbench.synth import make_city

    return make_city(seed=0)


@pytest.mark.parametrize("system,variable", [("energy", "electric_load"), ("water", "water_flow")])
def test_driver_model_beats_seasonal_naive_on_reference_city(reference_city, system, variable):
    """Issue 4 must-show: ≥ 20 % lower MAE than seasonal naive, zone level, 7 daily origins, 1-day horizon."""
    y = to_zones(reference_city[system].to_dataset())[variable].compute()
    temp = to_zones(reference_city["environment"].to_dataset())["air_temperature"].compute()
    bt = backtest(y, horizon="1D", drivers=temp, origins=7).compute()
    skill = float(bt["skill_total"].sel(model="regression"))
    mae = bt["mae"].mean(["origin", "zone"])
    print(f"{variable}: MAE naive {float(mae.sel(model='seasonal_naive')):.2f} regression "
          f"{float(mae.sel(model='regression')):.2f} skill {skill:.3f} "
          f"coverage {float(bt['coverage'].sel(model='regression').mean()):.2f}")
    assert skill >= 0.20


def test_closed_form_ridge_equals_scikit_learn():
    from sklearn.linear_model import Ridge

    from workbench.analysis.forecast import _Ridge

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 12)) * rng.uniform(1, 5, 12) + 3
    y = X @ rng.normal(size=12) + rng.normal(size=400)
    mu, sd = X.mean(0), X.std(0)
    want = Ridge(alpha=1.0).fit((X - mu) / sd, y).predict((X - mu) / sd)
    np.testing.assert_allclose(_Ridge(X, y, 1.0).predict(X), want, atol=1e-9)
