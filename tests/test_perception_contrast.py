"""The one-pass contrast kernel against the array expression it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.perception import _kernels as K
from workbench.perception._contrast import contrast


def _reference(score, effect, slow, background, *, floor, gain=1.0, direction="both", absolute=0.0, bar=5.0):
    """The NumPy composition (session 4): full-size float64 temporaries."""
    with np.errstate(all="ignore"):
        c = slow.astype(np.float64) - background
        cs = np.fmax(gain * (c - K.row_median(c)) / np.fmax(K.row_mad(c), floor), 0.0)
        if direction == "down":
            cs = np.zeros_like(cs)
        now = effect - background
        ce = np.where(c * now > 0, np.sign(c) * np.fmin(np.abs(c), np.abs(now)), 0.0)
        take = ~np.isnan(score) & (np.abs(cs) > np.abs(score))
        out_s, out_e = np.where(take, cs, score), np.where(take, ce, effect)
        if absolute > 0:
            a = bar * slow.astype(np.float64) / absolute
            if direction != "both":
                a = np.where(a > 0 if direction == "up" else a < 0, a, 0.0)
            ae = np.where(slow * effect > 0, np.sign(slow) * np.fmin(np.abs(slow), np.abs(effect)), 0.0)
            take = ~np.isnan(out_s) & (np.abs(a) >= bar) & (np.abs(a) > np.abs(out_s))
            out_s, out_e = np.where(take, a, out_s), np.where(take, ae, out_e)
    return out_s.astype(np.float32), out_e.astype(np.float32)


def _block(n_t, dtype, seed):
    rng = np.random.default_rng(seed)
    n = 9
    zone_slow = rng.normal(0, 2, (3, n_t)).round(1)  # ties; rows of a zone share the slow residual
    slow = np.repeat(zone_slow, 3, axis=0).astype(dtype)
    score = rng.normal(0, 3, (n, n_t)).astype(dtype)
    effect = rng.normal(0, 2, (n, n_t)).astype(dtype)
    effect[:, ::7] = slow[:, ::7]  # equal values
    for a, frac in ((slow, 0.05), (score, 0.1), (effect, 0.08)):
        a[rng.random(a.shape) < frac] = np.nan
    slow[4] = np.nan  # a row with no contrast at all
    effect[:, 5] = 1e-30  # products that underflow in float32
    slow[:, 5] = 1e-30
    background = np.nanmin(slow, axis=0)[None, :]
    return score, effect, slow, background


@pytest.mark.parametrize("n_t", [50, 9000, 35_040])
@pytest.mark.parametrize("direction", ["both", "up", "down"])
@pytest.mark.parametrize("absolute", [0.0, 1.5])
def test_contrast_equals_the_array_expression(n_t, direction, absolute):
    for dtype in (np.float32, np.float64):
        score, effect, slow, bg = _block(n_t, dtype, seed=n_t)
        kw = dict(floor=0.1, gain=1.3, direction=direction, absolute=absolute, bar=5.0)
        got = contrast(score, effect, slow, bg, **kw)
        want = _reference(score, effect, slow, bg, **kw)
        for g, w in zip(got, want):
            assert g.dtype == np.float32 and g.shape == w.shape
            assert g.tobytes() == w.tobytes()  # bit-identical (NaN, -0.0 included)


def test_contrast_broadcasts_a_one_dimensional_background():
    score, effect, slow, bg = _block(300, np.float32, seed=1)
    a = contrast(score, effect, slow, bg[0], floor=0.1, absolute=2.0)
    b = _reference(score, effect, slow, bg[0], floor=0.1, absolute=2.0)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
    assert np.nanmax(a[0]) > 0  # not vacuous: some contrast is taken
