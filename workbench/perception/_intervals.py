"""Interval checks shared by corroboration, confirmation and the adjacent-zone test: which
detections depart in a named direction, and which intervals another table's overlap."""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np
import pandas as pd

__all__ = ["departing", "overlaps", "shared_by_another"]


def departing(detected: pd.DataFrame, sources: Mapping[str, str]) -> np.ndarray:
    """Rows of ``detected`` of a variable of ``sources`` (``{variable: up|down}``) whose score
    departs in that variable's direction (boolean, one per row)."""
    ok = np.zeros(len(detected), dtype=bool)
    if not sources or not len(detected) or "score" not in detected:
        return ok
    sign = np.sign(detected["score"].to_numpy(dtype=float))
    variable = detected["variable"].to_numpy()
    for src, way in sources.items():
        ok |= (variable == src) & (sign == (1.0 if way == "up" else -1.0))
    return ok


def overlaps(key: pd.Series, start: pd.Series, end: pd.Series, key_s: pd.Series, start_s: pd.Series,
              end_s: pd.Series, tol: np.int64) -> np.ndarray:
    """For each interval, whether an interval of the other table with the same key overlaps it
    within ``tol`` (ns): per key, the others sorted by start with the running maximum of their
    ends, one ``searchsorted`` per key (no pairwise join)."""
    out = np.zeros(len(key), dtype=bool)
    if not len(key) or not len(key_s):
        return out
    a, b = start.to_numpy("datetime64[ns]").astype(np.int64), end.to_numpy("datetime64[ns]").astype(np.int64)
    sa, sb = start_s.to_numpy("datetime64[ns]").astype(np.int64), end_s.to_numpy("datetime64[ns]").astype(np.int64)
    others = pd.Series(np.arange(len(key_s))).groupby(key_s.astype(str).to_numpy()).indices
    for k, rows in pd.Series(np.arange(len(key))).groupby(key.astype(str).to_numpy()).indices.items():
        j = others.get(k)
        if j is None:
            continue
        order = np.argsort(sa[j], kind="stable")
        st, en = sa[j][order], np.maximum.accumulate(sb[j][order])
        pos = np.searchsorted(st, b[rows] + tol, side="right") - 1
        found = pos >= 0
        out[rows[found]] = en[pos[found]] + tol >= a[rows[found]]
    return out


@numba.njit(cache=True)
def _two_latest(end: np.ndarray, who: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over each prefix of intervals (sorted by start): the latest end, whose it is, and the
    latest end of anyone else."""
    n = len(end)
    best, best_who, other = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    b, w, o = np.iinfo(np.int64).min, -1, np.iinfo(np.int64).min
    for k in range(n):
        if who[k] == w:
            b = max(b, end[k])
        elif end[k] > b:
            o, b, w = b, end[k], who[k]
        else:
            o = max(o, end[k])
        best[k], best_who[k], other[k] = b, w, o
    return best, best_who, other


def shared_by_another(start: np.ndarray, end: np.ndarray, who: np.ndarray) -> np.ndarray:
    """For each interval (``start``, ``end``: int64 ns, inclusive), whether an interval of
    another member (``who``: int codes) overlaps it. One sort and one pass: the overlapping
    intervals start before this one ends, so the latest end of anyone else among them says it
    (the pairwise comparison it replaces was quadratic)."""
    out = np.zeros(len(start), dtype=bool)
    if len(start) < 2:
        return out
    order = np.argsort(start, kind="stable")
    best, best_who, other = _two_latest(end[order], who[order])
    k = np.searchsorted(start[order], end, side="right") - 1  # the intervals starting by this one's end
    ok = k >= 0
    kk = k[ok]
    latest = np.where(best_who[kk] != who[ok], best[kk], other[kk])
    out[ok] = latest >= start[ok]
    return out
