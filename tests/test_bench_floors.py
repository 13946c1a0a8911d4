"""The robust-floor benchmark computes what it says: a centred rolling median and MAD."""

import numpy as np

from benchmarks.bench_floors import WINDOW, _median, _median_mad


def test_centred_rolling_median_and_mad_match_a_loop():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4 * WINDOW))
    half = WINDOW // 2
    inner = slice(WINDOW, x.shape[-1] - WINDOW)  # away from the partial windows at the edges
    ref = np.stack([[np.median(row[t - half + 1: t + half + 1]) for t in range(x.shape[-1] - half)] for row in x])
    np.testing.assert_allclose(_median(x)[:, inner], ref[:, inner])
    dev = np.abs(x - _median(x))
    ref_mad = np.stack([[np.median(row[t - half + 1: t + half + 1]) for t in range(x.shape[-1] - half)] for row in dev])
    np.testing.assert_allclose(_median_mad(x)[:, inner], ref_mad[:, inner])
