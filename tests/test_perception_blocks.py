"""Block kernels of the score path against the NumPy expressions they replaced (bit-identical)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.perception import _blocks as B
from workbench.perception import _kernels as K
from workbench.perception._cityload import loading, loading_scan_block

CODES = np.array([3, 3, 3, 5, 5, 8, 8, 8, 8])


def _finish_ref(score, gain, direction):
    s = (score * gain).astype(np.float32)
    if direction != "both":
        keep = s > 0 if direction == "up" else s < 0
        s = np.where(keep | np.isnan(s), s, np.float32(0.0))
    return s


def _rep_z(seed, n_t=400):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (len(CODES), n_t)).astype(np.float32)
    z[rng.random(z.shape) < 0.1] = np.nan
    _, inv = B._zone_index(CODES)
    first = B._first_rows(inv, 3)
    rep = np.full(z.shape, np.nan, dtype=np.float32)
    rep[first] = rng.normal(0, 1, (3, n_t)) + np.linspace(0, 3, n_t)
    city = np.broadcast_to(np.nanmedian(rep, axis=0), z.shape).astype(np.float32)
    return rep, z, city, inv, first


@pytest.mark.parametrize("direction", ["both", "up", "down"])
def test_city_scans_equal_the_where_take_expression(direction):
    rep, z, city, inv, first = _rep_z(1)
    d = rep[first].astype(np.float64) - city[first].astype(np.float64)
    ref = _finish_ref(np.where(np.isnan(z), np.nan, K.scan_max(d, (4, 16))[inv]), 1.3, direction)
    got = B.city_scan_block(rep, z, city, codes=CODES, scales=(4, 16), gain=1.3, direction=direction)
    assert got.dtype == np.float32 and got.tobytes() == ref.tobytes()
    zb = rep[first].astype(np.float64)
    c = city[first[0]].astype(np.float64)
    d = zb - loading(zb, c)[:, None] * c[None, :]
    ref = _finish_ref(np.where(np.isnan(z), np.nan, K.scan_max(d, (4, 16))[inv]), 1.3, direction)
    got = loading_scan_block(rep, z, city, codes=CODES, scales=(4, 16), gain=1.3, direction=direction)
    assert got.tobytes() == ref.tobytes()
    assert np.isnan(got).sum() == np.isnan(z).sum() and np.nanmax(np.abs(got)) > 1.0


def _poisson_ref(x, bad_mask, *, codes, slot, steps_per_hour, scales, effect_window):
    """Session 4's ``_poisson_scores`` (float64 z, score, effect)."""
    import bottleneck as bn

    from workbench.perception._counts import poisson_scan

    c = np.round(x / steps_per_hour)
    c[bad_mask] = np.nan
    zones, inv = B._zone_index(codes)
    n_z = len(zones)
    cz = B._zone_reduce(c, inv, n_z, "sum")
    nz = np.zeros_like(cz)
    for k in range(n_z):
        nz[k] = (~np.isnan(c[inv == k])).sum(axis=0)
    group = slot // max(1, steps_per_hour)
    n_g = int(group.max()) + 1
    lam = np.empty((n_z, n_g))
    for k in range(n_z):
        ok = ~np.isnan(cz[k])
        tot_c = np.bincount(group[ok], weights=cz[k][ok], minlength=n_g)
        tot_n = np.bincount(group[ok], weights=nz[k][ok], minlength=n_g)
        mean = tot_c.sum() / max(tot_n.sum(), 1.0)
        lam[k] = (tot_c + 4.0 * mean) / (tot_n + 4.0)
    ez = lam[:, group] * nz
    ez[nz == 0] = np.nan
    scales = tuple(sorted(set(scales) | {2 * k for k in scales}))
    score_z = poisson_scan(cz, ez, scales, overdispersion=False)
    w = 4 * effect_window
    with np.errstate(all="ignore"):
        csum = bn.move_sum(np.nan_to_num(cz), w, min_count=1, axis=-1)
        esum = bn.move_sum(np.nan_to_num(ez), w, min_count=1, axis=-1)
        shift = w // 2
        rel = (csum - esum) / esum
        rel = np.concatenate([rel[:, shift:], np.full((n_z, shift), np.nan)], axis=-1)
        mu = lam[inv][:, group]
        z = (c - mu) / np.sqrt(mu)
    valid = ~np.isnan(c)
    return z, np.where(valid, score_z[inv], np.nan), np.where(valid, rel[inv], np.nan)


@pytest.mark.parametrize("direction", ["both", "up", "down"])
def test_poisson_scores_equal_the_array_expressions(direction):
    rng = np.random.default_rng(2)
    n_t = 24 * 4 * 14
    x = rng.poisson(4.0, (len(CODES), n_t)).astype(np.float64) * 4
    x[:5, 400:460] *= 3  # an event
    x[rng.random(x.shape) < 0.05] = np.nan
    bad = rng.random(x.shape) < 0.03
    kw = dict(codes=CODES, slot=np.arange(n_t) % 96, steps_per_hour=4, scales=(4, 8), effect_window=4)
    z, score, effect = B._poisson_scores(x, bad, gain=1.3, direction=direction, **kw)
    zr, sr, er = _poisson_ref(x, bad, **kw)
    assert all(a.dtype == np.float32 for a in (z, score, effect))
    assert z.tobytes() == zr.astype(np.float32).tobytes()
    assert score.tobytes() == _finish_ref(sr, 1.3, direction).tobytes()
    assert effect.tobytes() == er.astype(np.float32).tobytes()
    assert np.nanmax(np.abs(score)) > 3.0 and np.isnan(score).any()
