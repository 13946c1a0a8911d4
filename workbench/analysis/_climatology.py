"""One-pass climatology kernels: the mean of each calendar slot, and the anomaly from it.

A calendar key's codes come in runs of consecutive slots (a day of time-of-day slots; a week
of hour-of-week ones), so each run is one contiguous add of readings into slot sums. The
indices are unsigned: with signed ones numba adds its negative-index wraparound to every
access and LLVM does not vectorise the loop (measured 5× slower; docs/analysis.md). Counts
are the slot sizes, except in a row where a slot's sum came out NaN: only those slots are
summed again, skipping missing readings. Sums run in time order, as a plain loop's would.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["slot_runs", "group_mean", "group_anomaly"]

_MIN_RUN = 8  # mean run length below which a plain scatter beats one short loop per run


def slot_runs(code: np.ndarray, ng: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes as uint64, the start of each run of consecutive codes (+ the end), slot sizes.

    No starts (an empty array) when the runs are short: the kernels then add reading by reading.
    """
    code = np.asarray(code, dtype=np.int64)
    if code.size and (code.min() < 0 or code.max() >= ng):
        raise ValueError(f"slot codes must lie in [0, {ng}).")
    starts = np.concatenate([[0], np.flatnonzero(np.diff(code) != 1) + 1, [code.size]])
    if code.size < _MIN_RUN * (starts.size - 1):  # short runs (hour of day at 15 min): scatter
        starts = starts[:0]
    return code.astype(np.uint64), starts.astype(np.uint64), np.bincount(code, minlength=ng).astype(np.float64)


@numba.njit(cache=True, nogil=True)
def _row_sums(row, code, starts, size, s, c):  # pragma: no cover - numba
    s[:] = 0.0
    if starts.shape[0] == 0:
        for t in range(row.shape[0]):
            s[code[t]] += row[t]
    for r in range(starts.shape[0] - 1):
        t0 = starts[r]
        g0 = code[t0]
        for k in range(starts[r + 1] - t0):
            s[g0 + k] += row[t0 + k]
    c[:] = size
    redo = False
    for g in range(s.shape[0]):
        if s[g] != s[g]:
            redo = True
    if redo:  # NaN (missing readings) in some slots: sum those again without them
        keep = s == s
        for g in range(s.shape[0]):
            if not keep[g]:
                s[g] = 0.0
                c[g] = 0.0
        for t in range(row.shape[0]):
            g = code[t]
            v = row[t]
            if not keep[g] and v == v:
                s[g] += v
                c[g] += 1.0


@numba.njit(cache=True, nogil=True)
def _mean(x, code, starts, size, out):  # pragma: no cover - numba
    ng = size.shape[0]
    s = np.empty(ng)
    c = np.empty(ng)
    for i in range(x.shape[0]):
        _row_sums(x[i], code, starts, size, s, c)
        for g in range(ng):
            out[i, g] = s[g] / c[g] if c[g] > 0 else np.nan


@numba.njit(cache=True, nogil=True)
def _anomaly(x, code, starts, size, ratio, out):  # pragma: no cover - numba
    ng = size.shape[0]
    s = np.empty(ng)
    c = np.empty(ng)
    m = np.empty(ng)
    for i in range(x.shape[0]):
        row = x[i]
        _row_sums(row, code, starts, size, s, c)
        for g in range(ng):
            m[g] = s[g] / c[g] if c[g] > 0 else np.nan
            if ratio and m[g] == 0.0:
                m[g] = np.nan
        o = out[i]
        if starts.shape[0] == 0:
            for t in range(row.shape[0]):
                o[t] = row[t] / m[code[t]] if ratio else row[t] - m[code[t]]
        for r in range(starts.shape[0] - 1):
            t0 = starts[r]
            g0 = code[t0]
            if ratio:
                for k in range(starts[r + 1] - t0):
                    o[t0 + k] = row[t0 + k] / m[g0 + k]
            else:
                for k in range(starts[r + 1] - t0):
                    o[t0 + k] = row[t0 + k] - m[g0 + k]


def _rows(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=np.float64)


def group_mean(x: np.ndarray, runs: tuple, shape: tuple[int, ...]) -> np.ndarray:
    """Mean of ``x`` (…, time) per slot, NaN skipped: (…, *shape); ``runs`` from :func:`slot_runs`."""
    x2 = _rows(x)
    out = np.empty((x2.shape[0], int(np.prod(shape))))
    _mean(x2, *runs, out)
    return out.reshape(x.shape[:-1] + tuple(shape))


def group_anomaly(x: np.ndarray, runs: tuple, ratio: bool = False) -> np.ndarray:
    """``x`` minus (or over, ``ratio``; 0 → NaN) the mean of its slot, per series: same shape."""
    x2 = _rows(x)
    out = np.empty_like(x2)
    _anomaly(x2, *runs, ratio, out)
    return out.reshape(x.shape)
