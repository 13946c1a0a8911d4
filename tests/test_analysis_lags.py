"""Lagged correlation: FFT equals the direct sum, lazy, finds the built-in couplings, none between independent series.

The couplings are checked on seeds 0–3 (the threshold was tuned on seeds 100–109).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench import registry
from workbench.analysis import lag_matrix, lagged_correlation, to_zones
from workbench.analysis.lags import ccf_numpy

SEEDS = (0, 1, 2, 3)
#: driver, response, sign, lag (min), deseasonalize, lag tolerance (min) — None: lag not asserted
CHECKS = [
    ("rainfall", "traffic_speed", -1, 0, True, 15),
    ("footfall", "data_traffic", +1, 0, True, 15),
    ("traffic_flow", "no2", +1, 60, False, 0),  # raw series: the lag in the rush-hour rhythm
    ("traffic_flow", "no2", +1, 60, True, 15),  # deseasonalized: hour-to-hour demand carries it
    ("air_temperature", "electric_load", +1, 120, True, 15),  # passing clouds make the lag identifiable
]


def test_ccf_numpy_equals_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 500))
    y = np.roll(x, 7, axis=-1) + rng.normal(size=(3, 500))
    x[1, 20] = np.nan
    c, sd = ccf_numpy(x, y, 12)
    for i in range(3):
        a = np.nan_to_num(x[i] - np.nanmean(x[i]))
        b = y[i] - y[i].mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        for k, L in enumerate(range(-12, 13)):
            want = (a[: 500 - L] * b[L:]).sum() / den if L >= 0 else (a[-L:] * b[: 500 + L]).sum() / den
            assert c[i, k] == pytest.approx(want, abs=1e-12)
    assert (c.argmax(-1) == 12 + 7).all()
    assert ((sd > 0.03) & (sd < 0.1)).all()  # ≈ 1/sqrt(500) for white noise


@pytest.mark.parametrize("n,max_lag", [(300, 150), (301, 5)])
def test_ccf_numpy_no_wraparound_and_bartlett_equal_direct_sums(n, max_lag):
    """The FFT is padded just enough: every lag and Bartlett's null sd equal direct sums."""
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(size=(2, n)), -1)
    y = np.cumsum(rng.normal(size=(2, n)), -1)
    c, sd = ccf_numpy(x, y, max_lag)

    def acf(a, b, L):  # Σ_t a(t) b(t + L)
        return (a[: n - L] * b[L:]).sum() if L >= 0 else (a[-L:] * b[: n + L]).sum()

    m = n // 4
    for i in range(2):
        a, b = x[i] - x[i].mean(), y[i] - y[i].mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        want = [acf(a, b, L) / den for L in range(-max_lag, max_lag + 1)]
        np.testing.assert_allclose(c[i], want, atol=1e-12)
        ks = range(-m, m + 1)
        var = sum((1 - abs(k) / (m + 1)) * acf(a, a, k) / (a * a).sum() * acf(b, b, k) / (b * b).sum() for k in ks)
        assert sd[i] == pytest.approx(np.sqrt(max(var, 1.0) / n), rel=1e-10)


@pytest.fixture(scope="module")
def zoned():
    from workbench.synth import make_city

    cache = {}

    def get(seed: int) -> dict[str, xr.DataArray]:
        if seed not in cache:
            city = make_city(seed=seed)
            out = {}
            for s in registry.SYSTEMS:
                z = to_zones(city[s].to_dataset()).compute()
                out.update({v: z[v] for v in registry.variables_of(s)})
            cache[seed] = out
        return cache[seed]

    return get


@pytest.mark.parametrize("chunked", [False, True])
def test_lazy_and_metadata(small_city, chunked):
    env = small_city["environment"].to_dataset()
    tra = small_city["transport"].to_dataset()
    if not chunked:
        env, tra = env.compute(), tra.compute()
    with raise_if_dask_computes():
        r = lagged_correlation(env["rainfall"], tra["traffic_speed"], max_lag="2h")
    assert r["correlation"].dims == ("zone", "lag") and r.sizes["lag"] == 17
    assert r["lag"].dtype.kind == "m" and r["best_lag"].dtype.kind == "m"
    assert r["correlation"].attrs["units"] == "1" and "traffic speed" in r["correlation"].attrs["long_name"]
    assert "lagged_correlation('rainfall', 'traffic_speed'" in r.attrs["history"]
    rc = r.compute()
    assert float(np.abs(rc["correlation"]).max()) <= 1.0


def test_city_wide_driver_broadcasts(zoned):
    z = zoned(0)
    city_rain = z["rainfall"].mean("zone")
    r = lagged_correlation(city_rain, z["traffic_speed"], max_lag=8)
    assert r["correlation"].dims == ("zone", "lag")
    assert bool(r["pooled_significant"]) and float(r["pooled_best_correlation"]) < 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("driver,response,sign,lag,deseason,tol", CHECKS)
def test_recovers_builtin_couplings(zoned, seed, driver, response, sign, lag, deseason, tol):
    z = zoned(seed)
    r = lagged_correlation(z[driver], z[response], max_lag="6h", deseasonalize=deseason).compute()
    best = int(r["pooled_best_lag"] / np.timedelta64(1, "m"))
    print(f"seed {seed} {driver}->{response}: lag {best:+d} min, r {float(r['pooled_best_correlation']):+.2f}, "
          f"z {float(abs(r['pooled_best_correlation']) / r['pooled_null_sd']):.1f}")
    assert bool(r["pooled_significant"])
    assert np.sign(float(r["pooled_best_correlation"])) == sign
    if tol is not None:
        assert abs(best - lag) <= tol
        # most zones agree on their own
        zone_lags = (r["best_lag"] / np.timedelta64(1, "m")).values
        assert np.mean(np.abs(zone_lags - lag) <= max(tol, 15)) >= 0.75


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("driver,response", [(c[0], c[1]) for c in CHECKS] + [("air_temperature", "water_flow")])
def test_none_between_independent_series(zoned, seed, driver, response):
    a = zoned(seed)[driver]
    other = zoned(seed + 1000)[response].assign_coords(time=a["time"])
    r = lagged_correlation(a, other, max_lag="6h").compute()
    assert not bool(r["pooled_significant"]), float(abs(r["pooled_best_correlation"]) / r["pooled_null_sd"])
    b = zoned(seed)[response]
    days = b.sizes["time"] // 96
    perm = np.random.default_rng(seed).permutation(days)
    shuffled = b.isel(time=np.concatenate([np.arange(p * 96, (p + 1) * 96) for p in perm])).assign_coords(time=b["time"])
    r2 = lagged_correlation(a, shuffled, max_lag="6h").compute()
    assert not bool(r2["pooled_significant"]), float(abs(r2["pooled_best_correlation"]) / r2["pooled_null_sd"])


def test_lag_matrix(zoned):
    z = zoned(0)
    names = ["rainfall", "traffic_speed", "footfall", "data_traffic"]
    with raise_if_dask_computes():
        m = lag_matrix({n: z[n].chunk() for n in names}, max_lag="3h")
    m = m.compute()
    assert m["best_correlation"].dims == ("driver", "response")
    assert bool(m["significant"].sel(driver="footfall", response="data_traffic"))
    assert float(m["best_correlation"].sel(driver="rainfall", response="traffic_speed")) < 0
    assert float(m["best_correlation"].sel(driver="rainfall", response="rainfall")) == pytest.approx(1.0)


def test_rejects_irregular_time(zoned):
    z = zoned(0)["rainfall"]
    with pytest.raises(ValueError, match="regular time axis"):
        lagged_correlation(z.isel(time=[0, 1, 3, 4, 5]), z.isel(time=[0, 1, 3, 4, 5]), max_lag=1, deseasonalize=False)
