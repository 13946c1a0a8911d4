"""Forecasts with prediction intervals, and rolling-origin backtests with skill scores.

Two methods, both per series (each zone or sensor on its own):

- ``"seasonal_naive"``: the value one season earlier (default a week, which carries the
  weekend); intervals from the quantiles of the history's seasonal differences.
- ``"regression"``: ridge regression of ``log(value)`` on calendar terms (Fourier
  harmonics of the time of day, separately for weekdays and weekends, and day-of-week
  levels) and on weather drivers (each driver through a piecewise-linear basis — hinges at
  its quartiles — at lags 0–3 h, so a delayed or thresholded response can be learnt).
  Fitted in two passes, the second without readings beyond 4 robust SDs (outages,
  faults). Intervals are split-conformal: residual quantiles on the last
  ``calibration`` of history from a model fitted before it (then the model is refitted
  on the whole history for the point forecast).

Drivers must cover the forecast window: in a backtest the observed weather stands in for a
perfect weather forecast (said in every backtest's attrs). The ridge is solved in closed
form with numpy (the same estimator as scikit-learn's ``Ridge``; a backtest fits hundreds and
scikit-learn's per-call checks cost more than the fit).

Examples
--------
>>> from workbench.synth import make_city
>>> from workbench.analysis import to_zones, forecast
>>> city = make_city(zones=4, sensors_per_system=8, days=21)
>>> load = to_zones(city["energy"].ds)["electric_load"].isel(time=slice(None, -96))
>>> temp = to_zones(city["environment"].ds)["air_temperature"]
>>> fc = forecast(load, horizon="1D", drivers=temp)
>>> sorted(fc.data_vars), dict(fc["forecast"].sizes)
(['forecast', 'lower', 'upper'], {'zone': 4, 'time': 96})
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from workbench.analysis._common import history, var_attrs

__all__ = ["forecast", "backtest", "calendar_features", "METHODS"]

METHODS = ("seasonal_naive", "regression")
HARMONICS = 10
DRIVER_LAGS_MIN = (0, 60, 120, 180)
ALPHA = 1.0


def _steps(x, step: pd.Timedelta) -> int:
    if isinstance(x, (int, np.integer)):
        return int(x)
    n = pd.Timedelta(x) / step
    if n != int(n) or n <= 0:
        raise ValueError(f"{x!r} is not a positive whole number of {step} steps.")
    return int(n)


def _step_of(t: pd.DatetimeIndex) -> pd.Timedelta:
    d = np.diff(t.asi8)
    if len(d) == 0 or not (d == d[0]).all():
        raise ValueError("forecasting needs a regular time axis; resample first.")
    return pd.Timedelta(int(d[0]), "ns")


def calendar_features(t: pd.DatetimeIndex, *, harmonics: int = HARMONICS) -> np.ndarray:
    """Calendar design matrix (time × features): daytype-split Fourier terms and weekdays."""
    hod = (t.hour.to_numpy() * 60 + t.minute.to_numpy()) / 1440.0
    k = np.arange(1, harmonics + 1)
    four = np.concatenate([np.sin(2 * np.pi * hod[:, None] * k), np.cos(2 * np.pi * hod[:, None] * k)], axis=1)
    weekend = (t.day_of_week.to_numpy() >= 5)[:, None]
    dow = (t.day_of_week.to_numpy()[:, None] == np.arange(7)).astype(float)
    return np.concatenate([four * ~weekend, four * weekend, dow], axis=1)


def _driver_features(d: np.ndarray, n_hist: int, lag_steps: list[int]) -> np.ndarray:
    """(time × features) from drivers (k × time): hinge basis at history quartiles, lagged."""
    cols = []
    for row in np.atleast_2d(d):
        knots = np.nanquantile(row[:n_hist], [0.25, 0.5, 0.75]) if np.isfinite(row[:n_hist]).any() else np.zeros(3)
        basis = [row] + [np.maximum(row - kn, 0.0) for kn in knots]
        for b in basis:
            for L in lag_steps:
                cols.append(np.concatenate([np.full(L, np.nan), b[: len(b) - L]]) if L else b)
    return np.stack(cols, axis=1) if cols else np.empty((d.shape[-1], 0))


class _Ridge:
    """Ridge regression on standardised features, closed form (as scikit-learn's ``Ridge``
    with ``alpha``, without its per-call validation: a backtest fits hundreds)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, alpha: float):
        self.mu, sd = X.mean(0), X.std(0)
        self.sd = np.where(sd > 0, sd, 1.0)
        Z = (X - self.mu) / self.sd
        self.y0 = y.mean()
        A = Z.T @ Z + alpha * np.eye(Z.shape[1])
        self.beta = np.linalg.solve(A, Z.T @ (y - self.y0))

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.full(X.shape[0], np.nan)
        ok = np.isfinite(X).all(1)
        out[ok] = ((X[ok] - self.mu) / self.sd) @ self.beta + self.y0
        return out


def _fit(X: np.ndarray, y: np.ndarray):
    ok = np.isfinite(y) & np.isfinite(X).all(1)
    if ok.sum() < X.shape[1] + 10:
        return None
    m = _Ridge(X[ok], y[ok], ALPHA)
    r = y - m.predict(X)
    mad = np.nanmedian(np.abs(r[ok] - np.nanmedian(r[ok]))) * 1.4826
    keep = ok & (np.abs(r) <= 4 * max(mad, 1e-12))
    if keep.sum() > X.shape[1] + 10:
        m = _Ridge(X[keep], y[keep], ALPHA)
    return m.predict


def _regression_1d(y, drv, cal, n_cal, H, lag_steps, alpha_lo, alpha_hi):
    n = y.shape[-1]
    X = cal if drv is None else np.concatenate([cal, _driver_features(drv, n, lag_steps)], axis=1)
    pos = np.isfinite(y) & (y > 0)
    if pos.sum() < 20:
        return np.full((3, H), np.nan)
    floor = 0.05 * np.nanmedian(y[pos])
    ly = np.log(np.maximum(y, floor))
    # split conformal: fit before the calibration window, residual quantiles inside it
    f_cal = _fit(X[: n - n_cal], ly[: n - n_cal]) if n_cal else None
    f = _fit(X[:n], ly)
    if f is None:
        return np.full((3, H), np.nan)
    pred = f(X[n:])
    lo = hi = 0.0
    if f_cal is not None:
        res = ly[n - n_cal: n] - f_cal(X[n - n_cal: n])
        res = res[np.isfinite(res)]
        if res.size:
            lo, hi = np.quantile(res, [alpha_lo, alpha_hi])
            lo, hi = min(lo, 0.0), max(hi, 0.0)  # the interval always holds the point forecast
    return np.stack([np.exp(pred), np.exp(pred + lo), np.exp(pred + hi)])


def _kernel_regression(y, drv, *, cal, n_cal, H, lag_steps, alpha_lo, alpha_hi):
    lead = y.shape[:-1]
    out = np.full(lead + (3, H), np.nan)
    for idx in np.ndindex(*lead):
        d = None if drv is None else drv[idx]
        out[idx] = _regression_1d(y[idx], d, cal, n_cal, H, lag_steps, alpha_lo, alpha_hi)
    return out


def _kernel_naive(y, *, season, H, alpha_lo, alpha_hi):
    n = y.shape[-1]
    reps = int(np.ceil(H / season))
    last = y[..., n - season:]
    pred = np.concatenate([last] * reps, axis=-1)[..., :H]
    diff = y[..., season:] - y[..., :-season]
    lo = np.nanquantile(diff, alpha_lo, axis=-1)[..., None] if diff.shape[-1] else 0.0
    hi = np.nanquantile(diff, alpha_hi, axis=-1)[..., None] if diff.shape[-1] else 0.0
    return np.stack([pred, pred + lo, pred + hi], axis=-2)


def _as_driver_array(drivers, like: xr.DataArray, times: pd.DatetimeIndex) -> xr.DataArray:
    if isinstance(drivers, xr.DataArray):
        drivers = drivers.to_dataset(name=str(drivers.name or "driver"))
    elif isinstance(drivers, dict):
        drivers = xr.Dataset(drivers)
    names = [n for n, v in drivers.data_vars.items() if "time" in v.dims and not str(n).endswith(("_qc", "_completeness"))]
    arr = drivers[names].to_dataarray("driver")
    arr = arr.drop_vars([c for c in arr.coords if c not in arr.dims])
    missing = times.difference(arr.indexes["time"])
    if len(missing):
        raise ValueError(f"drivers must cover the history and the forecast window; {len(missing)} times missing from {missing[0]}.")
    arr = arr.sel(time=times)
    lead = [d for d in like.dims if d != "time"]
    arr = arr.broadcast_like(like.isel(time=0, drop=True)).transpose(*lead, "driver", "time")
    return arr.rename(time="time_all")


def forecast(
    da: xr.DataArray,
    *,
    horizon: str | int = "1D",
    drivers: xr.Dataset | xr.DataArray | None = None,
    method: str = "regression",
    season: str | int = "7D",
    interval: float = 0.9,
    calibration: str | int = "3D",
) -> xr.Dataset:
    """Forecast a series ``horizon`` ahead of its last time, with prediction intervals.

    Parameters
    ----------
    da
        History: a DataArray with a regular ``time`` axis last (e.g. ``zone × time``).
    horizon
        How far ahead: a duration (``"1D"``) or a number of steps.
    drivers
        Weather or other drivers (Dataset, DataArray or ``{name: DataArray}``) covering the
        history and the forecast window, each broadcastable to ``da`` (zone series or one
        city-wide series). Used by ``"regression"`` only; ``None`` fits calendar terms alone.
    method
        ``"regression"`` or ``"seasonal_naive"``.
    season
        Season of the naive forecast (``"7D"``, or ``"1D"``).
    interval
        Central coverage of the prediction interval.
    calibration
        Held-out end of history whose residuals set the regression's interval.

    Returns
    -------
    xarray.Dataset
        ``forecast``, ``lower``, ``upper`` over ``da``'s dims, with the ``horizon`` future
        times. Lazy when the input is.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if not 0 < interval < 1:
        raise ValueError(f"interval must lie in (0, 1); got {interval}.")
    name = str(da.name or "value")
    t = da.indexes["time"]
    step = _step_of(t)
    H = _steps(horizon, step)
    future = pd.date_range(t[-1] + step, periods=H, freq=step)
    a_lo, a_hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    y = da.drop_vars([c for c in da.coords if "time" in da[c].dims and c != "time"])
    y = y.transpose(..., "time")
    if y.chunks is not None:
        y = y.chunk({"time": -1})
    if method == "seasonal_naive":
        s = _steps(season, step)
        if s >= len(t):
            raise ValueError(f"history ({len(t)} steps) is shorter than one season ({s}).")
        out = xr.apply_ufunc(
            _kernel_naive, y, input_core_dims=[["time"]], output_core_dims=[["band", "step"]],
            kwargs=dict(season=s, H=H, alpha_lo=a_lo, alpha_hi=a_hi), dask="parallelized",
            output_dtypes=[np.float64], dask_gufunc_kwargs={"output_sizes": {"band": 3, "step": H}},
        )
        desc = f"seasonal naive (season {season})"
    else:
        all_t = t.append(future)
        cal = calendar_features(all_t)
        lag_steps = [int(pd.Timedelta(minutes=m) / step) for m in DRIVER_LAGS_MIN]
        kw = dict(cal=cal, n_cal=min(_steps(calibration, step), len(t) // 3), H=H, lag_steps=lag_steps, alpha_lo=a_lo, alpha_hi=a_hi)
        if drivers is None:
            out = xr.apply_ufunc(
                lambda yy, **k: _kernel_regression(yy, None, **k), y, input_core_dims=[["time"]],
                output_core_dims=[["band", "step"]], kwargs=kw, dask="parallelized", output_dtypes=[np.float64],
                dask_gufunc_kwargs={"output_sizes": {"band": 3, "step": H}},
            )
        else:
            drv = _as_driver_array(drivers, y, all_t)
            if drv.chunks is not None or y.chunks is not None:
                drv = drv.chunk({"time_all": -1, "driver": -1})
            out = xr.apply_ufunc(
                _kernel_regression, y, drv, input_core_dims=[["time"], ["driver", "time_all"]],
                output_core_dims=[["band", "step"]], kwargs=kw, dask="parallelized", output_dtypes=[np.float64],
                dask_gufunc_kwargs={"output_sizes": {"band": 3, "step": H}},
            )
        desc = "ridge regression of log value on calendar" + (" and drivers" if drivers is not None else "")
    out = out.rename(step="time").assign_coords(time=future)
    attrs = var_attrs(name, da)
    attrs.pop("cell_methods", None)
    ln = attrs.get("long_name", name)
    call = f"forecast({name!r}, horizon={horizon!r}, method={method!r}, interval={interval})"
    ds = xr.Dataset(
        {
            "forecast": out.isel(band=0).assign_attrs({**attrs, "long_name": f"forecast {ln}"}),
            "lower": out.isel(band=1).assign_attrs({**attrs, "long_name": f"lower {interval:.0%} prediction bound of {ln}"}),
            "upper": out.isel(band=2).assign_attrs({**attrs, "long_name": f"upper {interval:.0%} prediction bound of {ln}"}),
        }
    )
    ds.attrs = history({"variable": name, "method": method, "model": desc, "interval": interval,
                        "drivers": ", ".join(_driver_names(drivers))}, call)
    return ds


def _driver_names(drivers) -> list[str]:
    if drivers is None:
        return []
    if isinstance(drivers, xr.DataArray):
        return [str(drivers.name)]
    return [str(k) for k in (drivers.data_vars if isinstance(drivers, xr.Dataset) else drivers)]


def backtest(
    da: xr.DataArray,
    *,
    horizon: str | int = "1D",
    drivers: xr.Dataset | xr.DataArray | None = None,
    origins: int = 7,
    every: str | int = "1D",
    season: str | int = "7D",
    interval: float = 0.9,
    methods: tuple[str, ...] = METHODS,
) -> xr.Dataset:
    """Rolling-origin evaluation: forecast from each origin, score against what happened.

    The last ``origins`` origins are ``every`` apart, the last one ``horizon`` before the end
    of ``da``; each forecast sees only the history before its origin (expanding window).

    Returns
    -------
    xarray.Dataset
        ``mae``, ``mape`` (%, readings ≤ 1 % of the series median left out), ``coverage``
        (share of readings inside the interval), dims ``(model, origin, …)`` (``model`` names the method; ``method`` would shadow ``.sel``'s argument);
        ``skill`` = 1 − MAE / MAE of the seasonal naive (per origin and series) and
        ``skill_total`` = 1 − ΣMAE / ΣMAE(seasonal naive) over all origins and series.
        Lazy when the input is.

    Examples
    --------
    >>> from workbench.synth import make_city
    >>> from workbench.analysis import to_zones, backtest
    >>> city = make_city(zones=4, sensors_per_system=8, days=21)
    >>> flow = to_zones(city["water"].ds)["water_flow"]
    >>> temp = to_zones(city["environment"].ds)["air_temperature"]
    >>> bt = backtest(flow, drivers=temp, origins=2)
    >>> dict(bt["mae"].sizes)
    {'model': 2, 'origin': 2, 'zone': 4}
    """
    t = da.indexes["time"]
    step = _step_of(t)
    H, E = _steps(horizon, step), _steps(every, step)
    starts = [len(t) - H - i * E for i in reversed(range(origins))]
    if starts[0] < _steps(season, step) + H:
        raise ValueError(f"not enough history for {origins} origins {every} apart: the first needs a season and a horizon before it.")
    name = str(da.name or "value")
    # numpy's nanmedian: xarray's goes to numbagg, whose JIT costs ~20–50 s per process
    scale = 0.01 * xr.apply_ufunc(np.nanmedian, np.abs(da), input_core_dims=[["time"]], kwargs={"axis": -1},
                                  dask="parallelized", output_dtypes=[np.float64])
    rows = {m: [] for m in methods}
    for s in starts:
        hist = da.isel(time=slice(0, s))
        truth = da.isel(time=slice(s, s + H))
        for m in methods:
            fc = forecast(hist, horizon=H, drivers=drivers if m == "regression" else None, method=m, season=season, interval=interval)
            err = fc["forecast"] - truth
            inside = ((truth >= fc["lower"]) & (truth <= fc["upper"])).where(truth.notnull())
            rows[m].append(xr.Dataset({
                "mae": np.abs(err).mean("time"),
                "mape": 100 * (np.abs(err) / np.abs(truth).where(np.abs(truth) > scale)).mean("time"),
                "coverage": inside.mean("time"),
            }))
    per = xr.concat([xr.concat(rows[m], "origin") for m in methods], "model")
    per = per.assign_coords(model=("model", np.array(methods, dtype=object)), origin=("origin", t[starts].to_numpy()))
    per = per.drop_vars([c for c in per.coords if c not in ("model", "origin", "zone", "sensor") and c not in per.dims])
    attrs = var_attrs(name, da)
    per["mae"].attrs = {"units": attrs.get("units", ""), "long_name": f"mean absolute error of {attrs.get('long_name', name)}"}
    per["mape"].attrs = {"units": "%", "long_name": "mean absolute percentage error"}
    per["coverage"].attrs = {"units": "1", "long_name": f"share of readings inside the {interval:.0%} interval"}
    if "seasonal_naive" in methods:
        base = per["mae"].sel(model="seasonal_naive", drop=True)
        per["skill"] = (1 - per["mae"] / base).assign_attrs(units="1", long_name="MAE skill vs seasonal naive")
        per["skill_total"] = (1 - per["mae"].sum([d for d in per["mae"].dims if d != "model"])
                              / base.sum()).assign_attrs(units="1", long_name="MAE skill vs seasonal naive, all origins and series")
    per.attrs = history({"variable": name, "horizon": str(horizon), "origins": origins, "interval": interval,
                         "note": "drivers observed over the forecast window (a perfect weather forecast)"},
                        f"backtest({name!r}, horizon={horizon!r}, origins={origins}, every={every!r})")
    return per
