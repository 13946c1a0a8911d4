"""Zone residual signals: numba kernels against plain numpy, and independence of chunking."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.integration._residuals import _median_of, _residual_kernel, slot_keys, zone_residuals
from workbench.synth import make_city


@pytest.mark.parametrize("n", [1, 2, 3, 7, 24, 25, 26, 181, 182])
def test_median_matches_numpy_with_ties(n):
    rng = np.random.default_rng(n)
    for a in (rng.normal(size=n), np.round(rng.normal(size=n))):
        assert _median_of(a.copy(), n) == np.median(a)
    assert np.isnan(_median_of(np.empty(3), 0))


def _reference(x, keys, additive):
    """The recipe of the module notes, in plain numpy."""
    normal = np.full(x.shape, np.nan)
    for k in np.unique(keys):
        sel = keys == k
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slot stays NaN
            normal[:, sel] = np.nanmedian(x[:, sel], axis=1, keepdims=True)
    if additive:
        return x - normal
    floor = 0.1 * np.nanmean(normal, axis=1, keepdims=True)
    return x / np.maximum(normal, floor) - 1


@pytest.mark.parametrize("additive", [True, False])
def test_residual_kernel_matches_the_numpy_recipe(additive):
    time = pd.date_range("2025-01-06", periods=14 * 96, freq="15min")
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 10.0, size=(6, len(time)))
    x[1, :300] = np.nan  # a gap
    x[2, ::7] = 0.0  # zeros: the floor keeps the ratio finite
    keys = slot_keys(time)
    np.testing.assert_allclose(_residual_kernel(x, keys, additive), _reference(x, keys, additive), rtol=1e-12, equal_nan=True)


def test_zone_signals_do_not_depend_on_chunking():
    ref = zone_residuals(make_city(zones=4, sensors_per_system=12, days=14, seed=3)).compute()
    assert ref["electric_load"].dims == ("zone", "time") and int(ref["n_electric_load"].max()) >= 3
    for chunks in ({"sensor": 5}, {"sensor": 7}):
        got = zone_residuals(make_city(zones=4, sensors_per_system=12, days=14, seed=3, chunks=chunks)).compute()
        xr.testing.assert_identical(ref, got)


def test_zone_signals_with_whole_zones_per_chunk_in_any_order():
    d = make_city(zones=4, sensors_per_system=12, days=7, seed=3)["energy"].to_dataset()
    z = d["zone"].to_numpy().astype(str)
    order = np.argsort(z, kind="stable")[::-1].copy()  # zones in reverse order, one chunk per zone
    d2 = d.isel(sensor=order)
    d2 = d2.chunk({"sensor": tuple(pd.Series(z[order]).groupby(z[order], sort=False).size())})
    want = zone_residuals(xr.DataTree.from_dict({"energy": d}))
    got = zone_residuals(xr.DataTree.from_dict({"energy": d2})).compute()
    xr.testing.assert_identical(want, got)


def test_zone_signals_are_float32_medians_of_the_float64_ones_with_small_counts():
    from workbench.integration._residuals import _residual_rows, _slot_order

    city = make_city(zones=4, sensors_per_system=12, days=7, seed=3)
    sig = zone_residuals(city).compute()
    assert sig["electric_load"].dtype == np.float32 and sig["n_electric_load"].dtype == np.int16
    # the same zone medians computed in float64 (the kernel's arithmetic), then rounded once
    d = city["energy"].to_dataset()
    x = np.ascontiguousarray(d["electric_load"].values, dtype=np.float64)
    r = _residual_rows(x, *_slot_order(pd.DatetimeIndex(d.indexes["time"])), False)
    z = d["zone"].to_numpy().astype(str)
    for zone in np.unique(z):
        rows = r[z == zone]
        with np.errstate(all="ignore"):
            want = np.nanmedian(rows, axis=0)
        got = sig["electric_load"].sel(zone=zone).to_numpy()
        np.testing.assert_array_equal(got, want.astype(np.float32))
        assert (sig["n_electric_load"].sel(zone=zone).to_numpy() == np.isfinite(x[z == zone]).sum(axis=0)).all()
