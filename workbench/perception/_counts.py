"""Scan statistic for counts (numba): the Poisson counterpart of :func:`~workbench.perception._kernels.scan_max`."""

from __future__ import annotations

import numba
import numpy as np

from workbench.perception._kernels import _sliding_max

__all__ = ["poisson_scan", "pearson"]


@numba.njit(cache=True, nogil=True)
def _poisson_scan(c, e, scales, min_frac, center):  # pragma: no cover - compiled
    n_s, n_t = c.shape
    out = np.full((n_s, n_t), np.nan)
    for i in range(n_s):
        cs = np.zeros(n_t + 1)
        es = np.zeros(n_t + 1)
        cn = np.zeros(n_t + 1)
        for t in range(n_t):
            ok = not (np.isnan(c[i, t]) or np.isnan(e[i, t]))
            cs[t + 1] = cs[t] + (c[i, t] if ok else 0.0)
            es[t + 1] = es[t] + (e[i, t] if ok else 0.0)
            cn[t + 1] = cn[t] + (1.0 if ok else 0.0)
        best = np.zeros(n_t)
        for k in scales:
            if k > n_t:
                continue
            m = n_t - k + 1
            raw = np.full(m, np.nan)
            for a in range(m):
                n = cn[a + k] - cn[a]
                ex = es[a + k] - es[a]
                if n >= min_frac * k and n > 0 and ex > 0:
                    ob = cs[a + k] - cs[a]
                    llr = (ob * np.log(ob / ex) if ob > 0 else 0.0) - (ob - ex)
                    r = np.sqrt(2.0 * max(llr, 0.0))
                    raw[a] = r if ob >= ex else -r
            # overdispersion: rescale by the spread of the window statistics along the row,
            # never below the Poisson's own (1); no recentring (small counts skew the median)
            spread = 1.0
            if center:
                fin = raw[~np.isnan(raw)]
                if fin.size < 3:
                    continue
                if fin.size > 4096:
                    fin = fin[:: (fin.size + 4095) // 4096].copy()
                med = np.median(fin)
                spread = max(1.0, 1.4826 * np.median(np.abs(fin - med)))
            sp = np.full(m, -np.inf)
            sn = np.full(m, -np.inf)
            for a in range(m):
                if not np.isnan(raw[a]):
                    sp[a] = raw[a] / spread
                    sn[a] = -raw[a] / spread
            bp = np.full(n_t, -np.inf)
            bq = np.full(n_t, -np.inf)
            _sliding_max(sp, k, bp)
            _sliding_max(sn, k, bq)
            for t in range(n_t):
                v = bp[t] if bp[t] >= bq[t] else -bq[t]
                if abs(v) > abs(best[t]) and abs(v) < np.inf:
                    best[t] = v
        for t in range(n_t):
            if not np.isnan(c[i, t]):
                out[i, t] = best[t]
    return out


def poisson_scan(counts: np.ndarray, expected: np.ndarray, scales: tuple[int, ...], min_frac: float = 0.5,
                 overdispersion: bool = False) -> np.ndarray:
    """Poisson scan statistic: for each step, the strongest signed root log-likelihood ratio
    ``±sqrt(2 (C ln(C/E) - (C - E)))`` of the count ``C`` against its expectation ``E`` over every
    window of a length in ``scales`` containing the step (Kulldorff's statistic, signed; ≈ N(0, 1)
    for one window under the null, even for small counts). With ``overdispersion`` each scale is
    divided by the spread (1.4826 × MAD) of its window statistics along the row when that
    exceeds 1 — for overdispersed counts; at small counts the MAD of the discrete statistic
    overstates the spread, so it is off by default.
    """
    return _poisson_scan(np.ascontiguousarray(counts, dtype=np.float64), np.ascontiguousarray(expected, dtype=np.float64),
                         np.asarray(scales, dtype=np.int64), float(min_frac), bool(overdispersion))


@numba.njit(cache=True, nogil=True)
def _pearson(c, lam, inv, group):  # pragma: no cover - compiled
    n_s, n_t = c.shape
    out = np.empty((n_s, n_t), dtype=np.float32)
    for i in range(n_s):
        k = inv[i]
        for t in range(n_t):
            mu = lam[k, group[t]]
            out[i, t] = np.float32((c[i, t] - mu) / np.sqrt(mu))
    return out


def pearson(counts: np.ndarray, lam: np.ndarray, inv: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Pearson residual ``(C − μ) / √μ`` (float32) of each row's counts against its zone's
    (``inv``) rate per hour group (``lam[zone, group]``): the values of
    ``((c - lam[inv][:, group]) / np.sqrt(lam[inv][:, group])).astype(float32)`` in one pass."""
    return _pearson(np.ascontiguousarray(counts, dtype=np.float64), np.ascontiguousarray(lam, dtype=np.float64),
                    np.asarray(inv, dtype=np.int64), np.asarray(group, dtype=np.int64))
