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


def test_short_robust_floor_is_a_centred_nine_step_median_and_mad():
    from benchmarks.bench_floors import SHORT, _median_mad_short

    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 200))
    h = SHORT // 2
    med = np.stack([[np.median(row[t - h: t + h + 1]) for t in range(h, x.shape[-1] - h)] for row in x])
    dev = np.abs(x[:, h:-h] - med)
    got = _median_mad_short(x)[:, 2 * h: -2 * h]
    ref = np.stack([[np.median(row[t - h: t + h + 1]) for t in range(h, dev.shape[-1] - h)] for row in dev])
    np.testing.assert_allclose(got, ref)
