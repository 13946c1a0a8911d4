"""Spike and drift tests of sensors without zone-mates, against the other zones (``_lone``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import pandas as pd
import xarray as xr
from xarray.tests import raise_if_dask_computes

from workbench.perception import quality_flags
from workbench.perception._lone import lone_reference, lone_zones, ramp_runs, short_spikes
from workbench.perception._zoned import zone_map

warnings.filterwarnings("ignore", category=RuntimeWarning)

N_Z = 8  # zones, one sensor each
DAY = 96


def _city(n_t=DAY * 14, seed=0, weather=True) -> np.ndarray:
    """One sensor per zone: a shared daily rhythm and (optionally) shared multi-day swings."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_t)
    base = 500 * (1 + 0.4 * np.sin(2 * np.pi * t / DAY))
    if weather:  # fronts move every zone: ±25 % over days and a sharp city-wide jump
        base = base * (1 + 0.25 * np.sin(2 * np.pi * t / (DAY * 5))) * np.where((t >= 600) & (t < 602), 1.8, 1.0)
    return base[None, :] * rng.lognormal(0, 0.3, (N_Z, 1)) * (1 + 0.03 * rng.standard_normal((N_Z, n_t)))


def _ds(v: np.ndarray) -> xr.Dataset:
    n_s, n_t = v.shape
    return xr.Dataset({"electric_load": (("sensor", "time"), v, {"units": "kW"})},
                      coords={"sensor": [f"S{i}" for i in range(n_s)],
                              "time": pd.date_range("2026-07-06", periods=n_t, freq="15min"),
                              "zone": ("sensor", [f"Z{i:02d}" for i in range(n_s)])},
                      attrs={"system": "energy"})


def _qc(v: np.ndarray, **kw) -> np.ndarray:
    return quality_flags(_ds(v), **kw)["electric_load_qc"].values


def test_lone_zones_are_those_below_min_buddies():
    codes = np.array([0, 0, 0, 1, 2, 2, 3])
    assert lone_zones(codes, 3).tolist() == [1, 2, 3]
    assert lone_zones(codes, 2).tolist() == [1, 3]


def test_city_weather_and_a_shared_jump_are_not_flagged():
    qc = _qc(_city())
    assert not (qc & (8 | 64)).any()


def test_spike_of_a_lone_sensor_is_flagged_where_it_is():
    v = _city()
    v[3, 400] *= 1.6
    v[5, 700:702] *= 1.5
    qc = _qc(v)
    hits = {(int(i), int(t)) for i, t in zip(*np.nonzero(qc & 8))}
    assert hits == {(3, 400), (5, 700), (5, 701)}


def test_zone_event_shapes_are_not_spikes():
    v = _city()
    v[2, 300:308] *= 1.6  # two hours up: an event, not a spike
    v[4, 500:502] *= 0.1  # a short outage: drops are not lone spikes
    qc = _qc(v)
    assert not (qc & 8).any()


def test_drift_ramp_is_flagged_and_a_plateau_is_not():
    v = _city()
    ramp = np.clip((np.arange(v.shape[1]) - DAY * 4) / (DAY * 4), 0, None)
    v[1, DAY * 4:DAY * 8] *= 1 + 0.3 * ramp[DAY * 4:DAY * 8]  # +30 % over 4 days, then back
    v[6, DAY * 9:DAY * 12] *= 1.3  # a 3-day plateau (a heatwave or a leak in its zone)
    qc = _qc(v)
    assert (qc[1] & 64).sum() > DAY
    assert not (qc[1, :DAY * 4] & 64).any()
    assert not (qc[[0, 2, 3, 4, 5, 6, 7]] & 64).any()


def test_lazy_reference_equals_eager_and_does_not_compute():
    v = _city()
    v[3, 400] *= 1.6
    lazy = _ds(v)
    lazy["electric_load"] = lazy["electric_load"].chunk({"sensor": 3})  # three blocks, zones split across them
    with raise_if_dask_computes():
        out = quality_flags(lazy)
    np.testing.assert_array_equal(out["electric_load_qc"].values, _qc(v))


def test_neighbour_reference_uses_the_named_zones():
    v = np.zeros((4, 5))
    v[1] = 1.0
    v[2] = 2.0
    v[3] = 10.0
    x = xr.DataArray(np.exp(v) * 100, dims=("sensor", "time"))
    codes = np.arange(4)
    zones = ["A", "B", "C", "D"]
    ref_nb = lone_reference(x, codes, zones, np.array([0]), "linear", {"A": ["B", "C"]})
    ref_all = lone_reference(x, codes, zones, np.array([0]), "linear", None)
    # centred rows are 0 everywhere; only a step in one zone tells them apart
    assert ref_nb.shape == (1, 5) and np.allclose(ref_nb, 0) and np.allclose(ref_all, 0)
    x2 = x.copy()
    x2[3, 2] = 1e9  # zone D jumps: the all-zone median of three ignores it, B and C do not see it
    assert np.allclose(lone_reference(x2, codes, zones, np.array([0]), "linear", {"A": ["B", "C"]}), 0)


def test_short_spikes_kernel_limits_the_excursion_length():
    z = np.zeros((1, 30))
    z[0, 10:12] = 9.0
    z[0, 20:25] = 9.0
    d = z * 0.01
    hit = short_spikes(z, z, d, np.full(1, 0.01), spike_z=6, own_z=3, max_steps=3, side=4)
    assert hit[0].nonzero()[0].tolist() == [10, 11]


def test_ramp_runs_kernel_keeps_growing_runs_only():
    v = np.r_[np.zeros(5), np.linspace(0.1, 0.3, 20), np.zeros(5), np.full(20, 0.2), np.zeros(5)][None, :]
    far = np.abs(v) >= 0.1
    keep = ramp_runs(v, far, min_len=10, ratio=1.2)
    assert keep[0, 5:25].all() and not keep[0, 30:50].any()


def test_zone_map_hands_a_dask_summary_to_every_block():
    import dask.array as dsa

    x = xr.DataArray(np.arange(12.0).reshape(4, 3), dims=("sensor", "time")).chunk({"sensor": 2})
    shared = dsa.from_array(np.full((1, 3), 100.0), chunks=(1, 3))

    def add(b, *, codes, p):
        return b + p["s"][0]

    (out,) = zone_map(add, [x], np.array([0, 0, 1, 1]), dtypes=[np.float64], kwargs={"p": {"s": shared}})
    np.testing.assert_array_equal(out.values, np.arange(12.0).reshape(4, 3) + 100)


def test_leave_one_out_median_equals_the_plain_one():
    from workbench.perception._lone import loo_median

    rng = np.random.default_rng(3)
    m = rng.standard_normal((7, 50))
    m[rng.random(m.shape) < 0.2] = np.nan
    m[:, 0] = np.nan
    m[2:, 1] = np.nan
    m[:, 2] = 1.0  # ties
    lone = np.array([0, 3, 6])
    got = loo_median(m, lone)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.stack([np.nanmedian(np.delete(m, z, axis=0), axis=0) for z in lone])
    np.testing.assert_allclose(got, want, equal_nan=True)


def test_lone_tests_follow_per_call_overrides():
    v = _city()
    v[3, 400] *= 1.6
    assert (_qc(v)[3, 400] & 8)
    assert not (_qc(v, thresholds={"lone_spike_steps": 0, "lone_drift_ramp": 0}) & (8 | 64)).any()
    v[4, 500] *= 0.4  # a one-step drop: a spike only when drops count
    assert not (_qc(v)[4, 500] & 8)
    assert (_qc(v, thresholds={"lone_spike_direction": "both"})[4, 500] & 8)


@pytest.mark.parametrize("transform", ["log", "sqrt", "linear"])
def test_zone_sums_by_slabs_equal_the_whole_chunk_sums(transform):
    from workbench.perception._lone import SLAB_ROWS, _centred, _zone_sums

    rng = np.random.default_rng(0)
    n = 3 * SLAB_ROWS + 3
    x = rng.lognormal(3, 0.5, (n, 500))
    x[rng.random(x.shape) < 0.05] = np.nan
    codes = rng.integers(0, 4, n)
    s, c = _zone_sums(x, codes, 5, transform)
    y = _centred(x, transform)  # every row at once
    s_ref, c_ref = np.zeros((5, 500)), np.zeros((5, 500))
    for i in range(n):  # added in row order, as the kernel does
        s_ref[codes[i]] += np.nan_to_num(y[i])
        c_ref[codes[i]] += ~np.isnan(y[i])
    np.testing.assert_array_equal(s, s_ref)
    np.testing.assert_array_equal(c, c_ref)
    assert (c[4] == 0).all() and (c[:4] > 0).any()
