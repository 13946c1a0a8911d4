"""Cross-system lags: which series leads which, by how much, and is it real.

:func:`lagged_correlation` correlates two series over a window of lags with one FFT per
series (PERFORMANCE.md pitfall 10), per zone and pooled over zones, and tests each
correlation against the null of independence with Bartlett's variance, which accounts for
the autocorrelation of both series (two smooth independent series correlate by chance far
more often than white noise does).

Sign convention: a positive lag means ``b`` follows ``a`` — ``r(L) = corr(a(t), b(t + L))``.

With ``deseasonalize=True`` (the default) both series are first reduced to anomalies from
their own time-of-day profile (weekdays and weekends apart), so two systems that merely share
the daily rhythm do not look coupled. A lag that lives *in* the rhythm — a pollutant peak an
hour after the rush hour — is seen with ``deseasonalize=False``.

Examples
--------
>>> from workbench.synth import make_city
>>> from workbench.analysis import lagged_correlation, to_zones
>>> city = make_city(zones=4, sensors_per_system=8, days=14)
>>> rain = to_zones(city["environment"].ds)["rainfall"]
>>> speed = to_zones(city["transport"].ds)["traffic_speed"]
>>> r = lagged_correlation(rain, speed, max_lag="3h")
>>> int(r["pooled_best_lag"] / np.timedelta64(1, "m")), bool(r["pooled_best_correlation"] < 0)
(0, True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from workbench.analysis._common import history, single_time_chunk, time_index, var_attrs
from workbench.analysis.profiles import deseasonalize as _deseasonalize
from workbench.analysis.zones import to_zones

__all__ = ["lagged_correlation", "lag_matrix", "ccf_numpy"]

#: |r| / null sd above which a correlation is called significant. Tuned on seeds 100–109:
#: the largest null z seen between independent series (other seeds, day-shuffled days) was
#: below this, the weakest true coupling well above it (docs/analysis.md).
Z_SIGNIFICANT = 3.5


def _nfft(n: int) -> int:
    """The smallest 5-smooth length ≥ ``n`` (2^a 3^b 5^c: fast for pocketfft)."""
    best = 1 << max(0, int(n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def ccf_numpy(x: np.ndarray, y: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of ``x`` and ``y`` (last axis time) at lags −max_lag..max_lag, by FFT.

    Missing values are treated as the mean (they add nothing to the sums). Returns the
    correlation (…, 2·max_lag + 1) and Bartlett's null standard deviation (…).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.shape[-1]
    x = np.nan_to_num(x - np.nanmean(x, axis=-1, keepdims=True))
    y = np.nan_to_num(y - np.nanmean(y, axis=-1, keepdims=True))
    m = max(1, n // 4)  # Bartlett's window of autocorrelation lags
    nf = _nfft(n + max(max_lag, m))  # zero padding enough that no lag used wraps around
    fx = np.fft.rfft(x, nf)
    fy = np.fft.rfft(y, nf)
    sxx = (x * x).sum(-1)
    syy = (y * y).sum(-1)
    den = np.sqrt(sxx * syy)
    den = np.where(den > 0, den, np.nan)
    lags = np.arange(-max_lag, max_lag + 1)
    cxy = np.fft.irfft(np.conj(fx) * fy, nf)[..., lags % nf] / den[..., None]
    # Bartlett: var r ≈ (1/n) Σ_k w(k) ρx(k) ρy(k), k = −M..M, tapered (Bartlett window)
    k = np.arange(-m, m + 1)
    rx = np.fft.irfft(np.abs(fx) ** 2, nf)[..., k % nf] / np.where(sxx > 0, sxx, np.nan)[..., None]
    ry = np.fft.irfft(np.abs(fy) ** 2, nf)[..., k % nf] / np.where(syy > 0, syy, np.nan)[..., None]
    w = 1.0 - np.abs(k) / (m + 1)
    var = np.clip((w * rx * ry).sum(-1), 1.0, None) / n
    return cxy, np.sqrt(var)


def _best(c):
    absc = np.where(np.isfinite(c), np.abs(c), -1.0)
    i = absc.argmax(-1)
    return i.astype(np.int64), np.take_along_axis(c, i[..., None], -1)[..., 0]


_ROWS = 32  # series per FFT batch: bounds the complex temporaries (~8 MB per series each)


def _kernel(x, y, max_lag):
    lead = x.shape[:-1]
    x2, y2 = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
    c = np.empty((x2.shape[0], 2 * max_lag + 1))
    sd = np.empty(x2.shape[0])
    for r0 in range(0, x2.shape[0], _ROWS):
        c[r0:r0 + _ROWS], sd[r0:r0 + _ROWS] = ccf_numpy(x2[r0:r0 + _ROWS], y2[r0:r0 + _ROWS], max_lag)
    c, sd = c.reshape(lead + (2 * max_lag + 1,)), sd.reshape(lead)
    i, best = _best(c)
    return c, sd, i - max_lag, best


def _step(t: pd.DatetimeIndex) -> pd.Timedelta:
    if len(t) < 3:
        raise ValueError("need at least 3 time steps to correlate.")
    d = np.diff(t.asi8)
    if not (d == d[0]).all():
        raise ValueError("lagged_correlation needs a regular time axis; resample first.")
    return pd.Timedelta(int(d[0]), "ns")


def _prepare(x: xr.DataArray, deseason: bool, rollup: bool = True) -> xr.DataArray:
    name = str(x.name or "value")
    if rollup and "sensor" in x.dims:
        x = to_zones(x.to_dataset(name=name))[name]
    if deseason:
        x = _deseasonalize(x)
    return x


def lagged_correlation(
    a: xr.DataArray,
    b: xr.DataArray,
    *,
    max_lag: str | pd.Timedelta | int = "6h",
    deseasonalize: bool = True,
    z: float = Z_SIGNIFICANT,
    rollup: bool = True,
) -> xr.Dataset:
    """Correlation of ``b`` with ``a`` over a window of lags, per zone and pooled.

    Parameters
    ----------
    a, b
        DataArrays with a regular ``time`` axis: zone series ``(zone, time)``, sensor
        series ``(sensor, time)`` with a ``zone`` coordinate (rolled up with
        :func:`~workbench.analysis.to_zones` first), or one city-wide series ``(time,)``
        (broadcast against the other). Aligned on their common times and zones.
    max_lag
        Largest lag either way: a duration (``"6h"``) or a number of steps.
    deseasonalize
        Correlate anomalies from each series' time-of-day profile (default) or the raw
        series (mean removed).
    z
        Significance threshold in null standard deviations.
    rollup
        Roll sensor series up to zones first (default). ``False`` correlates the inputs
        along their shared dims as given (e.g. sensor by sensor, labels aligned).

    Returns
    -------
    xarray.Dataset
        ``correlation (zone, lag)``, ``best_lag (zone)``, ``best_correlation (zone)``,
        ``null_sd (zone)``, ``significant (zone)``, and the same for the zone-mean
        correlation, prefixed ``pooled_``. ``lag`` is a timedelta coordinate (positive:
        ``b`` follows ``a``). Lazy when the inputs are.
    """
    na, nb = str(a.name or "a"), str(b.name or "b")
    a2, b2 = _prepare(a, deseasonalize, rollup), _prepare(b, deseasonalize, rollup)
    a2, b2 = xr.align(a2, b2, join="inner", exclude=set(a2.dims) ^ set(b2.dims))
    a2, b2 = xr.broadcast(a2, b2)
    step = _step(time_index(a2))
    ml = int(max_lag) if isinstance(max_lag, (int, np.integer)) else int(pd.Timedelta(max_lag) / step)
    if ml < 0 or ml >= a2.sizes["time"]:
        raise ValueError(f"max_lag must be between 0 and the series length; got {max_lag!r}.")
    a2 = single_time_chunk(a2.drop_vars([c for c in a2.coords if c not in a2.dims], errors="ignore"))
    b2 = single_time_chunk(b2.drop_vars([c for c in b2.coords if c not in b2.dims], errors="ignore"))
    corr, sd, best_i, best = xr.apply_ufunc(
        _kernel, a2, b2,
        input_core_dims=[["time"], ["time"]],
        output_core_dims=[["lag"], [], [], []],
        kwargs={"max_lag": ml},
        dask="parallelized",
        output_dtypes=[np.float64, np.float64, np.int64, np.float64],
        dask_gufunc_kwargs={"output_sizes": {"lag": 2 * ml + 1}},
    )
    lag = np.arange(-ml, ml + 1) * step.to_timedelta64()
    corr = corr.assign_coords(lag=("lag", lag.astype("timedelta64[ns]")))
    la = var_attrs(na, a).get("long_name", na)
    lb = var_attrs(nb, b).get("long_name", nb)
    call = f"lagged_correlation({na!r}, {nb!r}, max_lag={max_lag!r}, deseasonalize={deseasonalize})"
    ds = xr.Dataset(
        {
            "correlation": corr.assign_attrs(units="1", long_name=f"correlation of {lb} with earlier {la}"),
            "best_lag": (best_i * step.to_timedelta64()).assign_attrs(long_name=f"lag of strongest correlation ({lb} after {la})"),
            "best_correlation": best.assign_attrs(units="1", long_name="correlation at the best lag"),
            "null_sd": sd.assign_attrs(units="1", long_name="standard deviation of the correlation if independent (Bartlett)"),
        }
    )
    ds["significant"] = (np.abs(ds["best_correlation"]) > z * ds["null_sd"]).assign_attrs(long_name=f"|best correlation| > {z} null sd")
    other = [d for d in corr.dims if d != "lag"]
    if other:
        pooled = corr.mean(other)
        psd = sd.mean(other)  # zones share the city's weather: assume full dependence (conservative)
    else:
        pooled, psd = corr, sd
    pi, pbest = xr.apply_ufunc(
        _best, pooled.drop_vars("lag"), input_core_dims=[["lag"]], output_core_dims=[[], []],
        dask="parallelized", output_dtypes=[np.int64, np.float64],
    )
    ds["pooled_correlation"] = pooled.assign_attrs(units="1", long_name=f"zone-mean correlation of {lb} with earlier {la}")
    ds["pooled_best_lag"] = ((pi - ml) * step.to_timedelta64()).assign_attrs(long_name="lag of strongest zone-mean correlation")
    ds["pooled_best_correlation"] = pbest.assign_attrs(units="1", long_name="zone-mean correlation at its best lag")
    ds["pooled_null_sd"] = psd.assign_attrs(units="1", long_name="null standard deviation of the zone-mean correlation")
    ds["pooled_significant"] = np.abs(ds["pooled_best_correlation"]) > z * ds["pooled_null_sd"]
    ds.attrs = history({"a": na, "b": nb, "deseasonalized": int(deseasonalize), "z_threshold": z}, call)
    return ds


def lag_matrix(series: dict[str, xr.DataArray], *, max_lag: str = "6h", deseasonalize: bool = True) -> xr.Dataset:
    """Pooled best lag and correlation for every ordered pair of named series.

    Returns a Dataset with dims ``(driver, response)``: ``best_lag``, ``best_correlation``,
    ``significant``. Lazy when the inputs are.
    """
    names = list(series)
    prepared = {n: _prepare(v.rename(n), deseasonalize) for n, v in series.items()}  # each series once
    lag_rows, r_rows, s_rows = [], [], []
    for x in names:
        lr, rr, sr = [], [], []
        for y in names:
            res = lagged_correlation(prepared[x], prepared[y], max_lag=max_lag, deseasonalize=False)
            lr.append(res["pooled_best_lag"])
            rr.append(res["pooled_best_correlation"])
            sr.append(res["pooled_significant"])
        lag_rows.append(xr.concat(lr, "response"))
        r_rows.append(xr.concat(rr, "response"))
        s_rows.append(xr.concat(sr, "response"))
    coords = {"driver": names, "response": names}
    out = xr.Dataset(
        {
            "best_lag": xr.concat(lag_rows, "driver").assign_attrs(long_name="lag of strongest correlation (response after driver)"),
            "best_correlation": xr.concat(r_rows, "driver").assign_attrs(units="1", long_name="correlation at the best lag"),
            "significant": xr.concat(s_rows, "driver"),
        }
    ).assign_coords(coords)
    out.attrs = history({}, f"lag_matrix({names}, max_lag={max_lag!r}, deseasonalize={deseasonalize})")
    return out
