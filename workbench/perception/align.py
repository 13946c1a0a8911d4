"""Alignment: put a system on a regular time grid and fill only short gaps, honestly.

Readings are averaged into ``freq`` bins (label = bin start). A run of empty bins no longer
than ``max_gap`` is filled by linear interpolation between its neighbours and marked with the
``filled`` bit (128) of ``<var>_qc``; longer runs stay missing and are flagged by
:func:`~workbench.perception.quality_flags` as gaps. Nothing beyond ``max_gap`` is invented,
and a run touching either end of the series (no neighbour on one side) is never filled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from workbench.perception import _kernels as K
from workbench.perception._common import append_history, data_variables, map_systems
from workbench.perception.flags import qc_attrs

__all__ = ["align"]


def _fill_block(x: np.ndarray, *, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation across NaN runs of at most ``max_steps`` with data on both sides."""
    out = x.copy()
    filled = np.zeros(x.shape, dtype=np.uint8)
    if max_steps <= 0:
        return out, filled
    nan = np.isnan(x)
    short = nan & ~K.long_runs(nan, max_steps + 1)
    for i in np.flatnonzero(short.any(axis=-1)):
        idx = np.flatnonzero(short[i])
        ok = np.flatnonzero(~nan[i])
        if len(ok) < 2:
            continue
        inside = (idx > ok[0]) & (idx < ok[-1])
        idx = idx[inside]
        out[i, idx] = np.interp(idx, ok, x[i, ok])
        filled[i, idx] = K.FILLED
    return out, filled


def align(ds: xr.Dataset | xr.DataTree, *, freq: str = "15min", max_gap: str = "1h") -> xr.Dataset | xr.DataTree:
    """Regular time grid, filling only gaps up to ``max_gap`` (marked in ``<var>_qc``).

    Parameters
    ----------
    ds
        A system Dataset (``sensor × time``; time may be irregular, unsorted or repeated) or
        a city DataTree.
    freq
        The grid step (a pandas offset, e.g. ``"15min"``, ``"1h"``).
    max_gap
        The longest run of empty grid steps that is filled (``"0min"`` fills nothing).

    Returns
    -------
    Dataset or DataTree
        Every ``(sensor, time)`` variable on the grid, with ``<var>_qc`` holding the
        ``filled`` bit (128) where a value was interpolated (an existing ``<var>_qc`` is
        dropped: flags describe readings, run :func:`quality_flags` on the aligned data).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:15", "2026-01-01 01:00"])
    >>> ds = xr.Dataset({"electric_load": (("sensor", "time"), [[1.0, 2.0, 5.0]])},
    ...                 coords={"sensor": ["E1"], "time": t, "zone": ("sensor", ["Z01"])})
    >>> out = align(ds, freq="15min", max_gap="30min")
    >>> out["electric_load"].values.tolist(), out["electric_load_qc"].values.tolist()
    ([[1.0, 2.0, 3.0, 4.0, 5.0]], [[0, 0, 128, 128, 0]])
    """
    step = pd.Timedelta(freq)
    max_steps = int(pd.Timedelta(max_gap) // step)

    def one(d: xr.Dataset) -> xr.Dataset:
        names = data_variables(d)
        t = pd.DatetimeIndex(d["time"].to_numpy())  # boundary: the time coordinate is small and in memory
        if len(t) == 0:
            return d
        grid = pd.date_range(t.min().floor(step), t.max().floor(step), freq=step)
        binned = d[names].assign_coords(time=t.floor(step))
        if binned.indexes["time"].is_unique and binned.indexes["time"].is_monotonic_increasing:
            regular = binned.reindex(time=grid)
        else:
            regular = binned.groupby("time").mean().reindex(time=grid)
        if regular.chunks:
            regular = regular.chunk({"time": -1})
        out = {}
        for name in names:
            values, filled = xr.apply_ufunc(
                _fill_block, regular[name].transpose("sensor", "time"), input_core_dims=[["time"]],
                output_core_dims=[["time"], ["time"]], dask="parallelized", output_dtypes=[np.float64, np.uint8],
                kwargs={"max_steps": max_steps},
            )
            values.attrs = d[name].attrs
            filled.attrs = qc_attrs(name, d[name].attrs.get("long_name"))
            out[name], out[f"{name}_qc"] = values, filled
        res = xr.Dataset(out, coords={k: v for k, v in d.coords.items() if "time" not in v.dims})
        res = res.assign_coords(time=grid)
        res.attrs = append_history(d.attrs, f"workbench.perception.align(freq={freq!r}, max_gap={max_gap!r})")
        return res

    return map_systems(ds, one)
