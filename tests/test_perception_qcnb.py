"""The flag tests' fused numba kernels (perception/_qcnb): the same values as the compositions they replace."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.perception import _kernels as K
from workbench.perception._qcnb import _middle_pair_network, median_residual


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
