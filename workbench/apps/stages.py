"""The loop's stages as the apps use them, imported lazily and cached per process.

The apps only compose: each function here calls :mod:`workbench.perception`,
:mod:`workbench.analysis` or :mod:`workbench.integration` on the cached city and caches
the result with :func:`panel.cache`, so every session shares one computation. A stage that
is not installed raises :class:`StageMissing`, which the views show as a note.
"""

from __future__ import annotations

from importlib import import_module

import pandas as pd
import panel as pn
import xarray as xr

from workbench.apps import data

__all__ = ["StageMissing", "stage", "flagged", "quality_summary", "zones", "profile_of", "forecast_of",
           "state", "index", "incidents", "alerts", "warm"]


class StageMissing(RuntimeError):
    """A stage of the loop the view needs is not in this build."""


def stage(module: str, *names: str, sub: str | None = None):
    """The functions ``names`` of ``workbench.<module>`` (or of its submodule ``sub`` when the
    package does not export them), or :class:`StageMissing`."""
    for where in (f"workbench.{module}", f"workbench.{module}.{sub}" if sub else None):
        if where is None:
            continue
        try:
            mod = import_module(where)
            return tuple(getattr(mod, n) for n in names)
        except (ImportError, AttributeError):
            continue
    raise StageMissing(f"The {module} stage ({', '.join(names)}) is not in this build yet.")


# -- perception ------------------------------------------------------------------------------
@pn.cache(max_items=16)
def flagged(dataset: str, system: str) -> xr.Dataset:
    """The system's readings with ``<var>_qc`` flags (and completeness) beside them."""
    (quality_flags,) = stage("perception", "quality_flags")
    return quality_flags(data.city(dataset)[system].to_dataset()).load()  # boundary: cached for every session


@pn.cache(max_items=64)
def quality_summary(dataset: str, system: str, variable: str, window) -> pd.DataFrame:
    """Per zone, in the window: readings, share present, and share carrying each flag."""
    (flag_names_of,) = stage("perception", "FLAG_MEANINGS")
    ds = flagged(dataset, system).sel(time=slice(window[0], window[1]))
    qc = ds[f"{variable}_qc"]
    masks = [int(m) for m in qc.attrs.get("flag_masks", [])]
    meanings = str(qc.attrs.get("flag_meanings", "")).split() or list(flag_names_of)
    zones_ = pd.Index(ds["zone"].to_numpy().tolist(), name="zone")
    q = pd.DataFrame(qc.to_numpy().astype("uint8"), index=zones_)  # boundary: flags of a plot's worth
    rows = {"readings": q.notna().groupby(level=0).sum().sum(axis=1)}
    present = pd.DataFrame(ds[variable].notnull().to_numpy(), index=zones_)
    rows["present %"] = (100 * present.groupby(level=0).mean().mean(axis=1)).round(1)
    for mask, meaning in zip(masks, meanings):
        share = ((q & mask) > 0).groupby(level=0).mean().mean(axis=1)
        if share.any():
            rows[f"{meaning} %"] = (100 * share).round(2)
    return pd.DataFrame(rows).reset_index()


# -- analysis --------------------------------------------------------------------------------
@pn.cache(max_items=16)
def zones(dataset: str, system: str) -> xr.Dataset:
    """The system rolled up to zones (``analysis.to_zones``; flags honoured when present)."""
    (to_zones,) = stage("analysis", "to_zones")
    city = data.city(dataset)
    try:
        ds = flagged(dataset, system)
    except StageMissing:
        ds = city[system].to_dataset()
    return to_zones(ds, zones=city["/zones"].to_dataset()).load()  # boundary: cached


@pn.cache(max_items=32)
def profile_of(dataset: str, system: str, variable: str) -> xr.DataArray:
    """Hour-of-week profile (zone × hourofweek) of the zone series."""
    (profile,) = stage("analysis", "profile")
    return profile(zones(dataset, system)[variable], by="hourofweek").load()  # boundary: cached


@pn.cache(max_items=32)
def forecast_of(dataset: str, system: str, variable: str) -> xr.Dataset:
    """A one-day-ahead forecast (with its interval) of every zone series."""
    (forecast,) = stage("analysis", "forecast")
    return forecast(zones(dataset, system)[variable], horizon="1D").load()  # boundary: cached


# -- integration -----------------------------------------------------------------------------
@pn.cache(max_items=4)
def state(dataset: str) -> xr.Dataset:
    """The city state (zone × time, one variable per indicator)."""
    (city_state,) = stage("integration", "city_state", sub="state")
    return city_state(data.city(dataset)).load()  # boundary: cached


@pn.cache(max_items=4)
def index(dataset: str) -> xr.Dataset:
    """The composite city index over the state."""
    (city_index,) = stage("integration", "city_index", sub="index")
    return city_index(state(dataset)).load()  # boundary: cached


@pn.cache(max_items=4)
def incidents(dataset: str) -> pd.DataFrame:
    """Incidents fused from co-occurring anomalies."""
    (detect_incidents,) = stage("integration", "detect_incidents", sub="incidents")
    return detect_incidents(data.city(dataset))


@pn.cache(max_items=4)
def alerts(dataset: str) -> pd.DataFrame:
    """Alerts routed to the domain that must act."""
    (respond,) = stage("integration", "respond", sub="rules")
    return respond(state(dataset), incidents(dataset), index=index(dataset))


# -- warm-up -----------------------------------------------------------------------------------
def warm(dataset: str = "reference") -> dict[str, float]:
    """Compute, into the process caches, everything the views draw for ``dataset`` over its
    whole period: per system and variable the zone series, the raster, the quality summary,
    the profile and the forecast; the index, incidents and alerts. Run by ``workbench serve
    --warm`` before the first session. Returns seconds per system; a missing stage is skipped.
    """
    import time

    from workbench.apps import _data
    from workbench.registry import SYSTEMS

    city = data.city(dataset)
    t0, t1 = _data.time_bounds(city)
    window = data.key((t0.to_pydatetime(), t1.to_pydatetime()))
    took = {}
    for system in [s for s in SYSTEMS if s in city.children]:
        start = time.perf_counter()
        for var in _data.data_variables(city, system):
            data.zone_series(dataset, system, var, window)
            data.matrix_image(dataset, system, var, window)
            for fn, args in ((quality_summary, (window,)), (profile_of, ()), (forecast_of, ())):
                try:
                    fn(dataset, system, var, *args)
                except StageMissing:
                    pass
        took[system] = round(time.perf_counter() - start, 2)
    for fn in (index, incidents, alerts):
        try:
            fn(dataset)
        except StageMissing:
            pass
    return took
