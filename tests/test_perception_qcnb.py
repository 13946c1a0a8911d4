"""The flag tests' fused numba kernels (perception/_qcnb): the same values as the compositions they replace."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.perception import _kernels as K
from workbench.perception._qcnb import (_middle_pair_network, buddy_diff, candidates, mask_and_range, median_residual,
                                      moving_median, residual_at, spike_bits_at)


@pytest.mark.parametrize("n", [2, 4, 6, 8, 10, 14])
def test_middle_pair_network_places_the_two_middle_values(n):
    qa, qb, qm = _middle_pair_network(n)
    rng = np.random.default_rng(n)
    for _ in range(200):
        v = rng.integers(0, 5, n).astype(float)  # ties included
        w0 = v.copy()
        for a, b, m in zip(qa, qb, qm):
            lo, hi = min(v[a], v[b]), max(v[a], v[b])
            if m in (0, 1):
                v[a] = lo
            if m in (0, 2):
                v[b] = hi
        s = np.sort(w0)
        assert (v[n // 2 - 1], v[n // 2]) == (s[n // 2 - 1], s[n // 2])


@pytest.mark.parametrize("window", [3, 5, 9, 11, 15])
@pytest.mark.parametrize("n_t", [5, 9, 256, 257, 1001])
@pytest.mark.parametrize("nan_share", [0.0, 0.002, 0.3])
def test_median_residual_is_x_minus_the_centred_median(window, n_t, nan_share):
    rng = np.random.default_rng(window * n_t)
    x = rng.standard_normal((4, n_t))
    x[1, ::7] = x[1, 0]
    x[2] = np.round(x[2])  # ties
    x[rng.random(x.shape) < nan_share] = np.nan
    ref = x - K.centered_median(x, window)
    np.testing.assert_array_equal(median_residual(x, window), ref)
    den = np.abs(rng.standard_normal((4, 1))) + 0.1
    np.testing.assert_array_equal(median_residual(x, window, den), ref / den)


def test_median_residual_declines_windows_it_does_not_take():
    x = np.zeros((2, 50))
    assert median_residual(x, 31) is None and median_residual(x, 1) is None and median_residual(x[:, :0], 9) is None


# -- the compositions the fused kernels replace (the kernels of earlier sessions, in plain Python) --

def _others_mean(v, w):
    n, n_t = v.shape
    mean, cnt = np.empty((n, n_t)), np.empty((n, n_t), dtype=np.int32)
    for t in range(n_t):
        s = sw = 0.0
        c = 0
        for i in range(n):
            if not np.isnan(v[i, t]):
                s += w[i] * v[i, t]
                sw += w[i]
                c += 1
        for i in range(n):
            so, swo, co = s, sw, c
            if not np.isnan(v[i, t]):
                so, swo, co = s - w[i] * v[i, t], sw - w[i], c - 1
            cnt[i, t] = co
            mean[i, t] = so / swo if co > 0 and swo > 0 else np.nan
    return mean, cnt


def _spike_mask(z_zone, z_own, n_others, n_min, spike_z, own_z):
    n, n_t = z_zone.shape
    out = np.zeros((n, n_t), dtype=bool)
    for t in range(n_t):
        ok = ~np.isnan(z_own[:, t])
        sa, so, co = 0.0, 0.0, 0
        for i in np.flatnonzero(ok):
            sa += abs(z_own[i, t])
            so += z_own[i, t]
            co += 1
        for i in range(n):
            a, b = z_zone[i, t], z_own[i, t]
            if not (abs(a) >= spike_z and abs(b) >= own_z and np.sign(a) == np.sign(b)) or n_others[i, t] < n_min:
                continue
            if co > 1 and not abs(b) > (sa - abs(b)) / (co - 1):
                continue
            if co > 1 and ((so - b) / (co - 1)) * np.sign(a) >= 0.5 * own_z:
                continue
            out[i, t] = True
    return out


def _stands_out(v, n_others, n_min):
    n, n_t = v.shape
    out = np.zeros((n, n_t), dtype=bool)
    for t in range(n_t):
        s, c = 0.0, 0
        for i in range(n):
            if not np.isnan(v[i, t]):
                s += abs(v[i, t])
                c += 1
        for i in range(n):
            a = abs(v[i, t])
            others = c - (0 if np.isnan(a) else 1)
            out[i, t] = n_others[i, t] < n_min or others == 0 or a > (s - (0.0 if np.isnan(a) else a)) / max(others, 1)
    return out


def _zone(n=5, n_t=400, seed=0, nan_share=0.05):
    rng = np.random.default_rng(seed)
    y = 0.3 * np.sin(np.arange(n_t) / 20.0)[None] + 0.05 * rng.standard_normal((n, n_t))
    y[rng.random(y.shape) < nan_share] = np.nan
    y[0, 100:103] += 1.5  # a spike
    y[1, 200:] += np.linspace(0, 0.5, n_t - 200)  # a drift
    y[2, :30] = np.nan  # a sensor missing for a while: fewer mates there
    return y


@pytest.mark.parametrize("n_min", [1, 2, 4])
def test_buddy_diff_is_the_difference_to_the_others_mean(n_min):
    y = _zone(seed=n_min)
    w = np.array([1.0, 2.0, 0.5, 3.0, 1.5])
    for wt in (None, w):
        d, cnt = buddy_diff(y, n_min, wt)
        mean, c = _others_mean(y, np.ones(5) if wt is None else w)
        np.testing.assert_array_equal(d, np.where(c >= n_min, y - mean, y))
        if wt is None:
            np.testing.assert_array_equal(cnt, c)


def test_spike_bits_at_the_candidate_steps_set_the_spike_mask_and_keep_other_bits():
    rng = np.random.default_rng(3)
    z_zone, z_own = 4 * rng.standard_normal((6, 300)), 3 * rng.standard_normal((6, 300))
    z_own[rng.random(z_own.shape) < 0.1] = np.nan
    z_zone[rng.random(z_own.shape) < 0.1] = np.nan
    cnt = rng.integers(0, 6, (6, 300)).astype(np.int32)
    bits = rng.integers(0, 256, (6, 300)).astype(np.uint8) & np.uint8(~8 & 0xFF)
    mask = _spike_mask(z_zone, z_own, cnt, 2, 6.0, 3.5)
    assert mask.any()
    ts = candidates(z_zone, 6.0)
    np.testing.assert_array_equal(ts, np.flatnonzero((np.abs(np.nan_to_num(z_zone)) >= 6.0).any(axis=0)))
    for steps in (ts, np.arange(300)):  # the candidates, or every step
        new = bits.copy()
        spike_bits_at(new, z_zone, np.ascontiguousarray(z_own[:, steps]), steps, cnt, 2, 6.0, 3.5, 8)
        np.testing.assert_array_equal(new, bits | np.where(mask, np.uint8(8), np.uint8(0)))


@pytest.mark.parametrize("transform", ["log", "linear"])
def test_own_z_at_the_candidates_equals_local_z_there(transform):
    from workbench.perception._qc import _local_z

    y = _zone(n_t=700, seed=9)
    y[3, 50:60] = np.nan
    ts = np.array([0, 1, 3, 55, 60, 100, 101, 102, 350, 695, 698, 699])
    sigma = np.abs(np.random.default_rng(2).standard_normal((5, 1))) * 0.01
    full = _local_z(y.copy(), 9, 0.001, transform, sigma)
    z = residual_at(y, ts, 9)
    if transform == "log":
        np.expm1(z, out=z)
    z /= np.fmax(sigma, 0.001)
    np.testing.assert_array_equal(z, full[:, ts])
    np.testing.assert_array_equal(residual_at(y, ts, 31), (y - K.centered_median(y, 31))[:, ts])  # bottleneck's path


def test_mask_and_range_masks_gap_bits_and_marks_out_of_range():
    x = np.array([[1.0, 5.0, np.nan, -2.0, 3.0]])
    y = x * 10
    bits = np.array([[2, 0, 3, 4, 0]], dtype=np.uint8)
    out = mask_and_range(x, y, bits, 2 | 4, 0.0, 4.0, 16)
    assert out is y
    np.testing.assert_array_equal(y, [[np.nan, 50.0, np.nan, np.nan, 30.0]])
    np.testing.assert_array_equal(bits, [[2, 16, 3, 4 | 16, 0]])


@pytest.mark.parametrize("window,n_t", [(96, 2000), (96, 2001), (24, 500), (8, 300)])
def test_zone_drift_equals_the_step_level_composition(window, n_t):
    from workbench.perception._qc import _drift_departure, _wander, _zone_drift

    y = _zone(n_t=n_t, seed=window)
    d, cnt = buddy_diff(y, 2)
    rng = np.random.default_rng(1)
    bits = np.where(rng.random(y.shape) < 0.02, np.uint8(8), np.uint8(0))
    kw = dict(n_min=2, fraction=0.06, window=window, min_len=window // 4, spread=4.0)
    new = bits.copy()
    _zone_drift(new, d, cnt, **kw)
    # the step-level composition of earlier sessions
    smooth = _drift_departure(d, ((bits & (K.SPIKE | K.OUT_OF_RANGE)) == 0) & (cnt >= 2), window)
    lim = max(0.06, 4.0 * _wander(smooth, window)) if n_t > window else 0.06
    far = (np.abs(smooth) >= lim) & _stands_out(smooth, cnt, 2) & (cnt >= 2)
    old = bits | np.where(K.long_runs(far, window // 4), np.uint8(K.DRIFT), np.uint8(0))
    assert (old & K.DRIFT).any()
    np.testing.assert_array_equal(new, old)


def test_median_residual_in_place_gives_the_same_values():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 700))
    x[rng.random(x.shape) < 0.01] = np.nan
    ref = median_residual(x, 9, np.full((3, 1), 2.0))
    y = x.copy()
    assert median_residual(y, 9, np.full((3, 1), 2.0), inplace=True) is y
    np.testing.assert_array_equal(y, ref)
    with pytest.raises(ValueError):
        median_residual(x[:, ::2], 9, inplace=True)


@pytest.mark.parametrize("window,min_count", [(3, None), (9, 2), (24, 6), (25, None), (49, 12), (97, 24)])
@pytest.mark.parametrize("n_t", [1, 2, 7, 30, 300, 1000])
@pytest.mark.parametrize("nan_share", [0.0, 0.01, 0.4])
def test_moving_median_is_the_centred_median(window, min_count, n_t, nan_share):
    rng = np.random.default_rng(window + n_t)
    x = rng.standard_normal((3, n_t))
    x[1] = np.round(x[1] * 2)  # ties
    x[rng.random(x.shape) < nan_share] = np.nan
    np.testing.assert_array_equal(moving_median(x, window, min_count), K.centered_median(x, window, min_count))
