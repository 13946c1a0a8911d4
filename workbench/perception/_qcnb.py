"""Numba kernels of the flag tests (:mod:`workbench.perception._qc`): one pass per zone block.

Each takes C-ordered float64 rows (a zone's sensors × time steps), runs without the GIL and
modifies nothing but the flag bits it sets (``bits |= ...``, in place) or the array it fills.
Each replaces a composition of :mod:`workbench.perception._kernels` and numpy calls with the same
values in one pass: no ``(sensor, time)`` temporaries besides their outputs.
"""

from __future__ import annotations

import numba
import numpy as np

from workbench.perception import _kernels as K

__all__ = ["median_residual", "moving_median", "buddy_diff", "candidates", "residual_at", "spike_bits_at", "mask_and_range",
           "usable_summary", "drift_bits"]


def _middle_pair_network(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Comparators ``(a, b, mode)`` of :func:`K._sorting_network` for ``n`` values, pruned to
    those that place the two middle values (ranks ``n // 2 - 1`` and ``n // 2``): ``mode`` 0
    keeps min and max, 1 only the min (wire ``a``), 2 only the max (wire ``b``)."""
    pa, pb = K._sorting_network(n)
    need = {n // 2 - 1, n // 2}
    keep = []
    for a, b in zip(pa[::-1].tolist(), pb[::-1].tolist()):
        lo, hi = a in need, b in need
        if lo or hi:
            keep.append((a, b, 0 if lo and hi else (1 if lo else 2)))
            need |= {a, b}
    keep.reverse()
    return tuple(np.array([k[j] for k in keep], dtype=np.int64) for j in range(3))


@numba.njit(cache=True, nogil=True, inline="always")
def _mid8(a0, a1, a2, a3, a4, a5, a6, a7):  # pragma: no cover - compiled
    # the 4th and 5th smallest of 8 values: _middle_pair_network(8), unrolled
    a0, a1 = min(a0, a1), max(a0, a1)
    a2, a3 = min(a2, a3), max(a2, a3)
    a4, a5 = min(a4, a5), max(a4, a5)
    a6, a7 = min(a6, a7), max(a6, a7)
    a0, a2 = min(a0, a2), max(a0, a2)
    a1, a3 = min(a1, a3), max(a1, a3)
    a4, a6 = min(a4, a6), max(a4, a6)
    a5, a7 = min(a5, a7), max(a5, a7)
    a1, a2 = min(a1, a2), max(a1, a2)
    a5, a6 = min(a5, a6), max(a5, a6)
    a4 = max(a0, a4)
    a5 = max(a1, a5)
    a2 = min(a2, a6)
    a3 = min(a3, a7)
    a4 = max(a2, a4)
    a3 = min(a3, a5)
    return min(a3, a4), max(a3, a4)


@numba.njit(cache=True, nogil=True)
def _pairs9(b, r, o, dv, scaled):  # pragma: no cover - compiled
    # o = r minus the median of 9 (b: r's window buffer, 4 steps of pad each side and one more
    # +inf), by pairs of steps: the 8 values they share through _mid8, each extra one clamped
    n = r.shape[0]
    for p in range(n // 2):
        t = 2 * p
        lo, hi = _mid8(b[t + 1], b[t + 2], b[t + 3], b[t + 4], b[t + 5], b[t + 6], b[t + 7], b[t + 8])
        o[t] = r[t] - min(max(b[t], lo), hi)
        o[t + 1] = r[t + 1] - min(max(b[t + 9], lo), hi)
    if n % 2:
        t = n - 1
        lo, hi = _mid8(b[t + 1], b[t + 2], b[t + 3], b[t + 4], b[t + 5], b[t + 6], b[t + 7], b[t + 8])
        o[t] = r[t] - min(max(b[t], lo), hi)
    if scaled:
        for t in range(n):
            o[t] /= dv


@numba.njit(cache=True, nogil=True)
def _median_residual(x, half, mc, pa, pb, qa, qb, qm, den, out, med_only=False):  # pragma: no cover - compiled
    # x minus its centred moving median over w = 2*half+1 steps (values of K._small_median),
    # divided by den[i] when den is given (len > 0). Tiles of T steps whose windows are all full
    # take pairs of steps t, t+1: their 2*half common values go through a selection network
    # for the two middle ones (qa, qb, qm), and each median is the extra value clamped between
    # them (the median of 2h+1 values is the h-th order statistic); other tiles sort each
    # window (pa, pb) like K._small_median. NaN -> +inf in the buffer, so missing values sort last.
    # out may be x itself: each step is read before it is written, the medians come from buf.
    # med_only: the median itself (no residual, no division)
    n_s, n_t = x.shape
    w = 2 * half + 1
    h2 = 2 * half
    T = 256
    buf = np.empty(n_t + 2 * half + 1)
    fin = np.zeros(n_t + 2 * half + 1, dtype=np.int64)
    S = np.empty((w, T))
    P = np.empty((h2, T // 2))
    n_c = pa.shape[0]
    n_q = qa.shape[0]
    scaled = den.shape[0] > 0
    for i in range(n_s):
        buf[n_t + 2 * half] = np.inf
        row = x[i]
        dv = den[i] if scaled else 1.0  # x / 1.0 is x
        K._pad_row(row, buf, fin, half)
        for t0 in range(0, n_t, T):
            L = min(T, n_t - t0)
            if fin[t0 + L + w - 1] - fin[t0] == L + w - 1 and half == 4 and not med_only:  # every window full, w = 9
                _pairs9(buf[t0:t0 + L + 10], row[t0:t0 + L], out[i, t0:t0 + L], dv, scaled)
            elif fin[t0 + L + w - 1] - fin[t0] == L + w - 1:  # every window of the tile is full
                n_p = (L + 1) // 2
                for k in range(h2):
                    for p in range(n_p):
                        P[k, p] = buf[t0 + 2 * p + 1 + k]
                for c in range(n_q):
                    a = qa[c]
                    b = qb[c]
                    m = qm[c]
                    if m == 0:
                        for p in range(n_p):
                            u = P[a, p]
                            v = P[b, p]
                            P[a, p] = min(u, v)
                            P[b, p] = max(u, v)
                    elif m == 1:
                        for p in range(n_p):
                            P[a, p] = min(P[a, p], P[b, p])
                    else:
                        for p in range(n_p):
                            P[b, p] = max(P[a, p], P[b, p])
                for p in range(n_p):
                    lo = P[half - 1, p]
                    hi = P[half, p]
                    t = t0 + 2 * p
                    S[0, 2 * p] = min(max(buf[t], lo), hi)
                    S[0, 2 * p + 1] = min(max(buf[t + w], lo), hi)
                for j in range(L):
                    out[i, t0 + j] = S[0, j] if med_only else (row[t0 + j] - S[0, j]) / dv
            else:
                for k in range(w):
                    for j in range(L):
                        S[k, j] = buf[t0 + j + k]
                K._network(S, pa, pb, 0, n_c, L)
                for j in range(L):
                    t = t0 + j
                    m = fin[t + w] - fin[t]
                    if m < mc:
                        med = np.nan
                    elif m % 2:
                        med = S[m // 2, j]
                    else:
                        med = 0.5 * (S[m // 2 - 1, j] + S[m // 2, j])
                    out[i, t] = med if med_only else (row[t] - med) / dv
    return out


def median_residual(x: np.ndarray, window: int, den: np.ndarray | None = None, *,
                    inplace: bool = False) -> np.ndarray | None:
    """``x`` minus its centred moving median (the values of ``x - K.centered_median(x, window)``),
    over ``den`` per row when given, into ``x`` itself with ``inplace`` (a C-ordered float64
    ``x``); ``None`` where that kernel would not take the small-window path (the caller falls back)."""
    n = x.shape[-1]
    if x.ndim != 2 or n == 0:
        return None
    window = min(int(window), n if n % 2 else n - 1) | 1
    if window > 15 or window < 3:
        return None
    half = window // 2
    d = np.empty(0) if den is None else np.ascontiguousarray(np.ravel(den), dtype=np.float64)
    if inplace and not (x.dtype == np.float64 and x.flags.c_contiguous and x.flags.writeable):
        raise ValueError("inplace needs a writeable C-ordered float64 array")
    x = np.ascontiguousarray(x, dtype=np.float64)
    return _median_residual(x, half, min(half + 1, window), *K._sorting_network(window), *_middle_pair_network(2 * half), d,
                            x if inplace else np.empty(x.shape))


def moving_median(x: np.ndarray, window: int, min_count: int | None = None) -> np.ndarray:
    """Centred moving median of 2-d rows (the values of :func:`K.centered_median`): windows of
    3-49 steps by :func:`_median_residual`'s pairs (the drift test's 25 hourly means: 2x
    bottleneck's ``move_median``), others by that function."""
    n = x.shape[-1]
    w = min(int(window), n if n % 2 else n - 1) | 1 if n else 0
    if x.ndim != 2 or not 3 <= w <= 49:
        return K.centered_median(x, window, min_count)
    mc = min(max(1, min_count or w // 2 + 1), w)
    x = np.ascontiguousarray(x, dtype=np.float64)
    return _median_residual(x, w // 2, mc, *K._sorting_network(w), *_middle_pair_network(w - 1), np.empty(0),
                            np.empty(x.shape), True)


@numba.njit(cache=True, nogil=True)
def _buddy_diff(v, w, n_min, want_cnt):  # pragma: no cover - compiled
    # rows outer, steps inner (contiguous, SIMD): the per-step sums over rows accumulate in row
    # order as a steps-outer loop would (adding +0.0 for a NaN leaves a sum that starts at +0.0 as is)
    n, n_t = v.shape
    d = np.empty((n, n_t))
    cnt = np.empty((n if want_cnt else 0, n_t if want_cnt else 0), dtype=np.int32)
    s = np.zeros(n_t)
    sw = np.zeros(n_t)
    c = np.zeros(n_t, dtype=np.int32)
    for i in range(n):
        wi = w[i]
        for t in range(n_t):
            x = v[i, t]
            ok = not np.isnan(x)
            s[t] += wi * x if ok else 0.0
            sw[t] += wi if ok else 0.0
            c[t] += 1 if ok else 0
    for i in range(n):
        wi = w[i]
        for t in range(n_t):
            x = v[i, t]
            so, swo, co = s[t], sw[t], c[t]
            if not np.isnan(x):
                so = so - wi * x
                swo = swo - wi
                co = co - 1
            if want_cnt:
                cnt[i, t] = co
            if co >= n_min:
                d[i, t] = x - (so / swo if co > 0 and swo > 0 else np.nan)
            else:
                d[i, t] = x
    return d, cnt


def buddy_diff(v: np.ndarray, n_min: int, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``v`` less the (``w``-weighted) mean of the other rows where at least ``n_min`` others
    report, else ``v`` (NaN-aware; the weighted mean is ``Σ w x / Σ w`` over the others),
    and that count (int32; only without ``w``: a weighted call's count is the same)."""
    v = np.ascontiguousarray(v, dtype=np.float64)
    wt = np.ones(v.shape[0]) if w is None else np.ascontiguousarray(np.ravel(w), dtype=np.float64)
    d, cnt = _buddy_diff(v, wt, int(n_min), w is None)
    return d, (cnt if w is None else None)


@numba.njit(cache=True, nogil=True)
def _mask_range(x, y, bits, mask, lo, hi, bit):  # pragma: no cover - compiled
    n, n_t = x.shape
    for i in range(n):
        for t in range(n_t):
            b = bits[i, t]
            if b & mask:
                y[i, t] = np.nan
            v = x[i, t]
            if v < lo or v > hi:
                bits[i, t] = b | bit
    return y


def mask_and_range(x: np.ndarray, y: np.ndarray, bits: np.ndarray, mask: int, lo: float, hi: float, bit: int) -> np.ndarray:
    """In place, one pass: ``y`` NaN where ``bits & mask``; ``bits |= bit`` where ``x`` is
    outside ``[lo, hi]`` (NaN is not); returns ``y``."""
    return _mask_range(x, y, bits, np.uint8(mask), float(lo), float(hi), np.uint8(bit))


@numba.njit(cache=True, nogil=True)
def _usable_block_means(d, bits, bad, cnt, n_min, b):  # pragma: no cover - compiled
    # K._block_means of np.where(usable, d, nan), usable = (bits & bad) == 0 and cnt >= n_min
    n, n_t = d.shape
    nb = (n_t + b - 1) // b
    out = np.empty((n, nb))
    for i in range(n):
        for k in range(nb):
            s = 0.0
            c = 0
            for t in range(k * b, min((k + 1) * b, n_t)):
                v = d[i, t]
                if not np.isnan(v) and (bits[i, t] & bad) == 0 and cnt[i, t] >= n_min:
                    s += v
                    c += 1
            out[i, k] = s / c if c else np.nan
    return out


@numba.njit(cache=True, nogil=True)
def _usable_row_median(d, bits, bad, cnt, n_min, stride):  # pragma: no cover - compiled
    # K._row_median of np.where(usable, d, nan) (the same strided subsample and selection)
    n_s, n_t = d.shape
    out = np.full((n_s, 1), np.nan)
    buf = np.empty((n_t + stride - 1) // stride)
    tmp = np.empty(buf.shape[0])
    for i in range(n_s):
        m = 0
        for t in range(0, n_t, stride):
            v = d[i, t]
            if not np.isnan(v) and (bits[i, t] & bad) == 0 and cnt[i, t] >= n_min:
                buf[m] = v
                m += 1
        if m:
            out[i, 0] = K._median(buf, m, tmp)
    return out


def usable_summary(d: np.ndarray, bits: np.ndarray, bad: int, cnt: np.ndarray, n_min: int,
                   b: int) -> tuple[np.ndarray, np.ndarray]:
    """Of ``d`` where usable (``bits & bad`` clear and ``cnt >= n_min``; NaN elsewhere): the means
    of runs of ``b`` steps (:func:`K.block_means`) and each row's median (:func:`K.row_median`),
    without forming the masked copy."""
    bad = np.uint8(bad)
    means = _usable_block_means(d, bits, bad, cnt, int(n_min), int(b))
    return means, _usable_row_median(d, bits, bad, cnt, int(n_min), K._stride(d.shape[-1]))


@numba.njit(cache=True, nogil=True)
def _drift_bits(smooth, b, cnt, n_min, lim, min_len, bits, bit):  # pragma: no cover - compiled
    # per step t (block k = t // b): far = |v| >= lim, the zone's stands-out test on v and
    # cnt >= n_min, v = smooth[i, k]; runs of far at least min_len long get `bit`
    n, nb = smooth.shape
    n_t = bits.shape[1]
    s = np.zeros(nb)
    c = np.zeros(nb, dtype=np.int64)
    for i in range(n):
        for k in range(nb):
            v = smooth[i, k]
            if not np.isnan(v):
                s[k] += abs(v)
                c[k] += 1
    far = np.zeros(n_t + 1, dtype=np.bool_)
    for i in range(n):
        for k in range(nb):  # where cnt >= n_min (else far is False), stands-out is the block's
            a = abs(smooth[i, k])
            na = np.isnan(a)
            others = c[k] - (0 if na else 1)
            hit = a >= lim and (others == 0 or a > (s[k] - (0.0 if na else a)) / max(others, 1))
            for t in range(k * b, min((k + 1) * b, n_t)):
                far[t] = hit and cnt[i, t] >= n_min
        t = 0
        while t < n_t:
            if far[t]:
                u = t
                while far[u]:
                    u += 1
                if u - t >= min_len:
                    for j in range(t, u):
                        bits[i, j] |= bit
                t = u
            else:
                t += 1


def drift_bits(bits: np.ndarray, smooth: np.ndarray, b: int, cnt: np.ndarray, n_min: int, lim: float, min_len: int,
               bit: int) -> None:
    """In place: ``bits |= bit`` on runs of at least ``min_len`` steps where ``v`` (``smooth``
    held over blocks of ``b`` steps) reaches ``lim``, stands out in the zone (``|v|`` above the
    mean ``|v|`` of the zone's other rows; or no other row has a value) and ``cnt >= n_min``."""
    _drift_bits(np.ascontiguousarray(smooth, dtype=np.float64), int(b), cnt, int(n_min), float(lim), int(max(1, min_len)),
                bits, np.uint8(bit))


@numba.njit(cache=True, nogil=True)
def _candidates(z, level):  # pragma: no cover - compiled
    n, n_t = z.shape
    hit = np.zeros(n_t, dtype=np.bool_)
    for i in range(n):
        for t in range(n_t):
            if abs(z[i, t]) >= level:
                hit[t] = True
    return np.flatnonzero(hit)


def candidates(z: np.ndarray, level: float) -> np.ndarray:
    """The steps (int64, ascending) where some row has ``|z| ≥ level`` (NaN never)."""
    return _candidates(np.ascontiguousarray(z, dtype=np.float64), float(level))


@numba.njit(cache=True, nogil=True)
def _residual_at(x, ts, half, mc):  # pragma: no cover - compiled
    n, n_t = x.shape
    out = np.empty((n, ts.shape[0]))
    buf = np.empty(2 * half + 1)
    for i in range(n):
        for j in range(ts.shape[0]):
            t = ts[j]
            m = 0
            for k in range(max(t - half, 0), min(t + half + 1, n_t)):
                v = x[i, k]
                if not np.isnan(v):
                    buf[m] = v
                    m += 1
            if m < mc:
                med = np.nan
            else:
                s = np.sort(buf[:m])
                med = s[m // 2] if m % 2 else 0.5 * (s[m // 2 - 1] + s[m // 2])
            out[i, j] = x[i, t] - med
    return out


def residual_at(x: np.ndarray, ts: np.ndarray, window: int) -> np.ndarray:
    """``(x - K.centered_median(x, window))[:, ts]`` (same values), computed at the steps ``ts`` only."""
    n = x.shape[-1]
    window = min(int(window), n if n % 2 else n - 1) | 1
    return _residual_at(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(ts, dtype=np.int64), window // 2,
                        min(window // 2 + 1, window))


@numba.njit(cache=True, nogil=True)
def _spike_bits_at(z_zone, z_own, ts, n_others, n_min, spike_z, own_z, bits, bit):  # pragma: no cover - compiled
    n = z_zone.shape[0]
    for j in range(ts.shape[0]):
        t = ts[j]
        sa = 0.0
        so = 0.0
        co = 0
        for i in range(n):
            b = z_own[i, j]
            if not np.isnan(b):
                sa += abs(b)
                so += b
                co += 1
        for i in range(n):
            a = z_zone[i, t]
            b = z_own[i, j]
            if not (abs(a) >= spike_z and abs(b) >= own_z and np.sign(a) == np.sign(b)):
                continue
            if n_others[i, t] < n_min:
                continue
            if co > 1 and not abs(b) > (sa - abs(b)) / (co - 1):
                continue
            if co > 1 and ((so - b) / (co - 1)) * np.sign(a) >= 0.5 * own_z:
                continue
            bits[i, t] |= bit


def spike_bits_at(bits: np.ndarray, z_zone: np.ndarray, z_own: np.ndarray, ts: np.ndarray, n_others: np.ndarray,
                  n_min: int, spike_z: float, own_z: float, bit: int) -> None:
    """In place: ``bits |= bit`` where ``|z_zone| ≥ spike_z`` and ``|z_own| ≥ own_z`` of one sign
    stand out in the zone (``|z_own|`` above the other rows' mean) and are not shared (the other
    rows' mean ``z_own`` in that direction below ``own_z / 2``), with at least ``n_min`` zone-mates
    reporting. ``z_own`` is given at the steps ``ts`` only (its columns): they must hold every
    step where some ``|z_zone| ≥ spike_z`` (:func:`candidates`), nowhere else can a bit be set."""
    _spike_bits_at(np.ascontiguousarray(z_zone), np.ascontiguousarray(z_own), np.ascontiguousarray(ts, dtype=np.int64),
                   n_others, int(n_min), float(spike_z), float(own_z), bits, np.uint8(bit))
