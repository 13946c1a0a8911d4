"""Analysis: profiles, zonal roll-ups, cross-system lags, forecasts and KPIs.

Every function takes and returns xarray objects, stays lazy on dask-backed input and
writes ``units``, ``long_name`` and a ``history`` line on its outputs. See
``docs/analysis.md``.
"""

from workbench.analysis.profiles import deseasonalize, profile
from workbench.analysis.zones import to_zones
from workbench.analysis.lags import lag_matrix, lagged_correlation
from workbench.analysis.forecast import backtest, forecast
from workbench.analysis.kpis import kpi_status, kpis, load_kpis

__all__ = ["profile", "deseasonalize", "to_zones", "lagged_correlation", "lag_matrix", "forecast", "backtest", "kpis", "kpi_status", "load_kpis"]
