"""Parsing raw text of observation fields: times to UTC, values to floats, flags to booleans.

Each function is elementwise over a pandas Series (a block's distinct values, usually), so a
reader can call it once per distinct spelling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["parse_times", "to_float"]

_NS_MIN = pd.Timestamp("1678-01-01", tz="UTC")
_NS_MAX = pd.Timestamp("2261-12-31", tz="UTC")
_OFFSET = r"(?:[Zz]|[+-]\d\d:?\d\d)$"
_INTERVAL = r"^[^/]*\d[Tt ][^/]*/"
_DATEISH = r"^\s*(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})"


def _as_string(values: Any) -> pd.Series:
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    return s.astype("string").str.strip()


def parse_times(values: pd.Series, *, naive_tz: str = "UTC", time_format: str | None = None) -> np.ndarray:
    """Parse times to UTC, tz-naive ``datetime64[ns]``; unparseable ones become NaT.

    ISO 8601 with any offset (``Z``, ``+08:00``, ``-0700``) is converted to UTC; times without
    an offset are local to ``naive_tz`` (DST-ambiguous or non-existent local times become
    NaT). An interval ``start/end`` gives its start. Other date spellings (``2018/08/25
    00:00:00``) are parsed by format inference, or by ``time_format`` when given.

    Examples
    --------
    >>> parse_times(pd.Series(["2010-12-23T11:20:00-0700", "nope"]))
    array(['2010-12-23T18:20:00.000000000',                           'NaT'],
          dtype='datetime64[ns]')
    """
    return _parse_times(values, naive_tz=naive_tz, time_format=time_format)[0]


def _parse_times(values: pd.Series, *, naive_tz: str, time_format: str | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`parse_times`, and which values needed a format inferred from the batch (not cacheable)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        t = pd.Series(values)
        t = t.dt.tz_convert("UTC") if t.dt.tz is not None else t.dt.tz_localize(naive_tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        return _bounded(t), np.zeros(len(t), bool)
    s = _as_string(values)
    s = s.where(s != "")
    interval = s.str.contains(_INTERVAL, regex=True).fillna(False).astype(bool)
    if interval.any():
        s = s.where(~interval, s.str.split("/", n=1).str[0])
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    if time_format is not None:
        has_off = pd.Series(False, index=s.index)
        retry = has_off
        naive = pd.to_datetime(s, format=time_format, errors="coerce")
        if getattr(naive.dt, "tz", None) is not None:
            out = naive.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
            return _bounded(out), np.zeros(len(out), bool)
    else:
        has_off = s.str.contains(_OFFSET, regex=True).fillna(False).astype(bool)
        if has_off.any():
            aware = pd.to_datetime(s.where(has_off), utc=True, format="ISO8601", errors="coerce")
            out = out.where(~has_off, aware.astype("datetime64[us, UTC]"))
        naive = pd.to_datetime(s.where(~has_off), format="ISO8601", errors="coerce")
        retry = naive.isna() & s.notna() & ~has_off & s.str.contains(_DATEISH, regex=True).fillna(False).astype(bool)
        if retry.any():
            naive = naive.copy()
            naive[retry] = _infer(s[retry])
    local = ~has_off & naive.notna()
    if local.any():
        loc = naive[local].dt.tz_localize(naive_tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        out = out.copy()
        out[local] = loc.astype("datetime64[us, UTC]")
    return _bounded(out), retry.to_numpy(dtype=bool)


def _infer(s: pd.Series) -> pd.Series:
    """Parse non-ISO spellings with one format inferred from the first value."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            t = pd.to_datetime(s, errors="coerce")
        except (ValueError, OverflowError, TypeError):
            return pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_convert(None)
    return t.astype("datetime64[us]")


def _bounded(t: pd.Series) -> np.ndarray:
    """UTC series -> naive ``datetime64[ns]`` array, NaT outside the ns range."""
    t = t.astype("datetime64[us, UTC]")
    t = t.where((t >= _NS_MIN) & (t <= _NS_MAX))
    return t.dt.tz_convert(None).astype("datetime64[ns]").to_numpy()


def to_float(values: pd.Series) -> np.ndarray:
    """Values to float64; anything not a finite number (text, bools, NaN, inf) becomes NaN."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_bool_dtype(s.dtype):
        return np.full(len(s), np.nan)
    if pd.api.types.is_numeric_dtype(s.dtype):
        out = s.astype("float64").to_numpy(na_value=np.nan)
    else:
        if s.dtype == object:  # JSON scalars: keep numbers, drop bools before str()
            s = s.map(lambda x: None if isinstance(x, bool) else x)
        out = pd.to_numeric(_as_string(s), errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    out = np.array(out, dtype="float64")
    out[~np.isfinite(out)] = np.nan
    return out


def _truthy(values: pd.Series) -> np.ndarray:
    s = _as_string(values).str.lower()
    return s.isin(["true", "1", "yes", "y", "t", "suspect"]).fillna(False).to_numpy(dtype=bool)
