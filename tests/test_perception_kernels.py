"""Perception's numba kernels against plain references: the same values, not just close."""

from __future__ import annotations

import itertools

import bottleneck as bn
import numpy as np
import pandas as pd
import pytest

from workbench.perception import _kernels as K


def _data(seed=0, shape=(5, 400)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[1, 50:62] = np.nan  # a gap longer than any window
    x[2, ::7] = np.nan  # scattered missing values
    x[3] = np.round(x[3])  # ties
    x[4, :] = np.nan
    return x


@pytest.mark.parametrize("n", range(1, 14))
def test_sorting_network_sorts_every_zero_one_input(n):
    # the 0-1 principle: a comparator network that sorts every 0/1 input sorts every input
    a, b = K._sorting_network(n)
    assert np.all(a < b) and (b.size == 0 or b.max() < n)
    v = np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int8).T.copy()
    for i, j in zip(a, b):
        lo, hi = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
        v[i], v[j] = lo, hi
    assert np.all(np.diff(v, axis=0) >= 0)


@pytest.mark.parametrize("window,min_count", [(3, 2), (5, 2), (5, 5), (9, 5), (9, 1), (15, 8), (13, 13)])
def test_small_median_equals_pandas_rolling_median(window, min_count):
    x = _data(1, (5, 700))  # more than two of the kernel's 256-step tiles
    ours = K.centered_median(x, window, min_count=min_count)
    ref = pd.DataFrame(x.T).rolling(window, center=True, min_periods=min_count).median().to_numpy().T
    assert np.array_equal(ours, ref, equal_nan=True)


def test_small_median_equals_bottleneck_path():
    x = _data(2, (5, 300))
    pad = np.full((5, 4), np.nan)
    ref = bn.move_median(np.concatenate([x, pad], axis=1), 9, min_count=5, axis=-1)[:, 4:]
    assert np.array_equal(K.centered_median(x, 9), ref, equal_nan=True)


@pytest.mark.parametrize("n_t", [1, 2, 3, 500, 20_000])
def test_row_stats_equal_bottleneck(n_t):
    x = _data(3, (5, n_t))
    s = K._stride(n_t, 8192)
    sub = x[:, ::s]
    with np.errstate(all="ignore"):
        med = bn.nanmedian(sub, axis=-1)[:, None]
        mad = 1.4826 * bn.nanmedian(np.abs(sub - med), axis=-1)[:, None]
    assert np.array_equal(K.row_median(x), med, equal_nan=True)
    assert np.array_equal(K.row_mad(x), mad, equal_nan=True)
    # the bottleneck path (non-2-d input) gives the same values
    assert np.array_equal(K.row_mad(x[None])[0], mad, equal_nan=True)
    if n_t >= 3:
        d2 = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
        s2 = K._stride(n_t - 2, 8192)
        sub = d2[:, ::s2]
        with np.errstate(all="ignore"):
            m2 = bn.nanmedian(sub, axis=-1)[:, None]
            ref = 1.4826 * bn.nanmedian(np.abs(sub - m2), axis=-1)[:, None] / np.sqrt(6.0)
        assert np.array_equal(K.diff_sigma(x), ref, equal_nan=True)


def test_zone_kernels_equal_numpy():
    x = _data(4, (9, 300)) * 3
    inv = np.array([2, 0, 1, 0, 2, 2, 1, 0, 2])
    for k in range(3):
        rows = x[inv == k]
        with np.errstate(all="ignore"):
            mean = bn.nanmean(np.clip(rows, -5, 5), axis=0)
            med = bn.nanmedian(rows, axis=0)
        assert np.array_equal(K.zone_mean_clipped(x, inv, 3, 5.0)[k], mean, equal_nan=True)
        assert np.array_equal(K.zone_median(x, inv, 3)[k], med, equal_nan=True)


def test_zone_median_takes_a_zeros_sign_as_the_row_order_sort():
    rng = np.random.default_rng(11)
    codes = np.repeat(np.arange(4), [7, 8, 1, 12])
    r = rng.normal(0, 1, (len(codes), 700)).round(1)
    r[rng.random(r.shape) < 0.2] = np.nan
    r[:, 600:] = np.where(rng.random((len(codes), 100)) < 0.5, -0.0, 0.0)  # ties of signed zeros
    r[:, 650:660] = np.nan
    r[3, 10] = np.inf
    got = K.zone_median(r, codes, 4)
    for k in range(4):
        for t in range(r.shape[1]):
            v = sorted(x for x in r[codes == k, t] if not np.isnan(x))  # stable: row order among ties
            m = len(v)
            want = np.nan if m == 0 else v[m // 2] if m % 2 else 0.5 * (v[m // 2 - 1] + v[m // 2])
            assert np.array_equal(got[k, t], want, equal_nan=True) and np.signbit(got[k, t]) == np.signbit(want)
    assert np.signbit(got[:, 600:650]).any() and (got[:, 600:650] == 0).all()


def test_scale_pool_equals_division_cast_and_zone_mean():
    r = _data(7, (9, 300)) * 20
    den = np.fmax(K.row_mad(r), 0.5) / 3
    inv = np.array([2, 0, 1, 0, 2, 2, 1, 0, 2])
    z, zbar = K.scale_pool(r, den, inv, 3, 5.0)
    with np.errstate(all="ignore"):
        ref = r / den
    assert z.dtype == np.float32 and z.tobytes() == ref.astype(np.float32).tobytes()
    assert zbar.tobytes() == K.zone_mean_clipped(ref, inv, 3, 5.0).tobytes()
    assert np.nanmax(np.abs(ref)) > 5.0  # the clip is exercised


@pytest.mark.parametrize("direction", ["both", "up", "down"])
def test_expand_equals_where_take_cast(direction):
    rows = _data(5, (5, 200))
    inv = np.array([0, 2, 4, 1, 3, 0])
    mask = _data(6, (6, 200))
    ref = (np.where(~np.isnan(mask), rows[inv], np.nan) * 1.7).astype(np.float32)
    if direction != "both":
        keep = ref > 0 if direction == "up" else ref < 0
        ref = np.where(keep | np.isnan(ref), ref, np.float32(0.0))
    got = K.expand(rows, inv, mask, gain=1.7, direction=direction)
    assert got.dtype == np.float32 and np.array_equal(got, ref, equal_nan=True)
    assert np.array_equal(K.expand(rows, inv), rows[inv].astype(np.float32), equal_nan=True)


def test_slot_center_equals_slot_median_residual():
    from workbench.perception._blocks import slot_median

    y = _data(7, (5, 672))
    slot = np.arange(672) % 96
    bits = np.zeros(y.shape, dtype=np.uint8)
    bits[0, 10:20] = 2
    ref = y.copy()
    ref[(bits & 2) != 0] = np.nan
    with np.errstate(all="ignore"):
        ref -= slot_median(ref, slot, 96)[:, slot]
    got = K.slot_center(y.copy(), bits, 2, slot, 96)
    assert np.array_equal(got, ref, equal_nan=True)


def test_row_median_exact_on_long_rows_with_ties():
    # rows long enough for the bracketing selection (>= 2048 values), rounded to make ties,
    # heavy tails, constant rows, odd and even counts
    rng = np.random.default_rng(8)
    for n in (2048, 2049, 5000, 8191, 8192):
        x = np.stack([rng.standard_normal(n), np.round(rng.standard_normal(n), 1), np.round(rng.standard_normal(n)),
                      rng.standard_cauchy(n), np.zeros(n), np.sort(rng.random(n))])
        x[0, ::5] = np.nan
        with np.errstate(all="ignore"):
            med = bn.nanmedian(x, axis=-1)[:, None]
            mad = 1.4826 * bn.nanmedian(np.abs(x - med), axis=-1)[:, None]
        assert np.array_equal(K.row_median(x), med, equal_nan=True)
        assert np.array_equal(K.row_mad(x), mad, equal_nan=True)


def test_block_means_equal_nanmean_of_padded_blocks():
    x = _data(9, (5, 403))
    pad = np.full((5, 4 * 101 - 403), np.nan)
    with np.errstate(all="ignore"):
        ref = np.nanmean(np.concatenate([x, pad], axis=1).reshape(5, 101, 4), axis=2)
    assert np.array_equal(K.block_means(x, 4), ref, equal_nan=True)


def test_pearson_equals_the_array_expression():
    from workbench.perception._counts import pearson

    rng = np.random.default_rng(3)
    c = rng.poisson(3.0, (7, 500)).astype(np.float64)
    c[rng.random(c.shape) < 0.1] = np.nan
    lam = rng.gamma(2.0, 1.5, (3, 24)) + 0.01
    inv = np.array([0, 0, 1, 2, 2, 1, 0])
    group = np.arange(500) % 24
    mu = lam[inv][:, group]
    ref = ((c - mu) / np.sqrt(mu)).astype(np.float32)
    got = pearson(c, lam, inv, group)
    assert got.dtype == np.float32 and got.tobytes() == ref.tobytes()
