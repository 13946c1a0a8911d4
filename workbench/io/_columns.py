"""A block's columns as integer codes into their distinct values (factorized or from Arrow).

A long file repeats each sensor id, variable, unit and (across sensors) each time stamp many
times; holding a column as ``codes`` into ``uniques`` lets the builder strip, resolve, parse
and convert each distinct value once and check rows with integer arrays.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from workbench.io._parse import _as_string

__all__ = ["col_from_series", "col_from_arrow", "uniques_series"]


class _Col(NamedTuple):
    """One column of a block as ``codes`` (-1 where missing) into ``uniques`` (raw values)."""

    codes: np.ndarray
    uniques: Any  # numpy object array, pandas Series (datetimes) or Arrow string array


def col_from_series(values: Any) -> _Col:
    """Factorize a column's text (stripped; missing and NA become code -1)."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        codes, uniq = pd.factorize(s)
        return _Col(codes, pd.Series(uniq))
    codes, uniq = pd.factorize(_as_string(s))
    return _Col(codes, np.asarray(uniq, dtype=object))


def col_from_arrow(arr: Any) -> _Col:
    """Dictionary-encode one Arrow column (codes and the distinct raw values)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    try:
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return col_from_series(arr.to_pandas())
    codes = pc.fill_null(arr.indices, -1).to_numpy()
    if pa.types.is_string(arr.dictionary.type) or pa.types.is_large_string(arr.dictionary.type):
        return _Col(codes, arr.dictionary)  # stays in Arrow: times are looked up there (see Collector)
    uniq = arr.dictionary.to_pandas()
    return _Col(codes, uniq.to_numpy(dtype=object) if not pd.api.types.is_datetime64_any_dtype(uniq.dtype) else uniq)


def uniques_series(uniques: Any) -> pd.Series:
    """Distinct values (numpy, pandas or Arrow) as a pandas Series."""
    if isinstance(uniques, pd.Series):
        return uniques
    if hasattr(uniques, "to_pandas"):
        return uniques.to_pandas()
    return pd.Series(uniques)


def _ext(per_unique: np.ndarray, codes: np.ndarray, fill: Any) -> np.ndarray:
    """Per-unique values -> per-row values (``fill`` where the code is -1)."""
    return np.append(np.asarray(per_unique), np.array([fill], dtype=np.asarray(per_unique).dtype))[codes]


def _stripped(uniques: Any) -> np.ndarray:
    """Distinct raw values as stripped text (object array, ``pd.NA`` where missing)."""
    return _as_string(uniques_series(uniques)).to_numpy(dtype=object, na_value=pd.NA)


class _Interner:
    """Values -> stable integer codes, in order of first appearance (a growing pandas Index)."""

    def __init__(self, dtype: str = "object") -> None:
        self._index = pd.Index(np.array([], dtype=dtype), dtype=dtype)

    def codes(self, values: np.ndarray) -> np.ndarray:
        pos = self._index.get_indexer(values)
        miss = pos < 0
        if miss.any():
            new = pd.unique(np.asarray(values)[miss])
            self._index = self._index.append(pd.Index(new, dtype=self._index.dtype))
            pos = self._index.get_indexer(values)
        return pos

    def values(self) -> np.ndarray:
        return self._index.to_numpy()

    def __len__(self) -> int:
        return len(self._index)
