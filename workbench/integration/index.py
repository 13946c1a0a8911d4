"""The composite city index: 0–100 per district, per system and overall, explainable.

Method (weights and thresholds in ``workbench/registry/index.yml``):

1. each indicator of the state is compared with the zone's own normal for that hour of the
   day (weekdays and weekends apart; the median over the record), and the departure divided
   by the zone's robust spread of it (1.4826 × the median absolute departure; for count
   data whose median departure is 0, 1.2533 × the mean absolute departure): a robust
   z-score ``z``;
2. only the bad direction counts (``high``: ``z``, ``low``: ``-z``, ``both``: ``|z|``); the
   indicator scores 100 up to ``z_ok``, 0 from ``z_bad``, linearly in between;
3. a system's index is the weighted mean of its indicators' scores, and the overall index
   the weighted mean over systems (system weight × indicator weight), each renormalised
   over the indicators present at that zone and time.

**Explainability:** ``contribution`` (dims ``zone × time × indicator``) is each indicator's
share of the overall index, ``effective weight × score``; the contributions add up to
``index`` exactly, and ``points_lost`` (``effective weight × (100 − score)``) add up to
``100 − index``: "why is district 7 red?" is the indicators with the most points lost.

Examples
--------
>>> from workbench.synth import make_city
>>> from workbench.integration.state import city_state
>>> ix = city_index(city_state(make_city(zones=4, sensors_per_system=8, days=7)))
>>> float(abs(ix["contribution"].sum("indicator") - ix["index"]).max()) < 1e-9
True
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry
from workbench.integration._residuals import _residual_kernel, slot_keys

__all__ = ["city_index", "load_index_spec", "explain"]

_DIRECTIONS = ("high", "low", "both")


def load_index_spec(spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The index spec (``registry/index.yml`` unless given), validated."""
    data = dict(spec) if spec is not None else registry.load_yaml("index.yml")
    m = data.get("method") or {}
    z_ok, z_bad = float(m.get("z_ok", 1.5)), float(m.get("z_bad", 6.0))
    if not 0 <= z_ok < z_bad:
        raise ValueError(f"index.yml: method needs 0 <= z_ok < z_bad, got z_ok={z_ok}, z_bad={z_bad}.")
    systems = data.get("systems")
    if not isinstance(systems, dict) or not systems:
        raise ValueError("index.yml: expected a 'systems' mapping.")
    for s, sd in systems.items():
        if s not in registry.SYSTEMS:
            raise ValueError(f"index.yml: unknown system {s!r}.")
        for name, ind in (sd.get("indicators") or {}).items():
            if registry.system_of(name) != s:
                raise ValueError(f"index.yml: indicator {name!r} is not a variable of {s}.")
            if ind.get("direction") not in _DIRECTIONS:
                raise ValueError(f"index.yml: {name}: direction must be one of {_DIRECTIONS}.")
            if float(ind.get("weight", 1)) < 0:
                raise ValueError(f"index.yml: {name}: weights are non-negative.")
    return {"z_ok": z_ok, "z_bad": z_bad, "systems": systems}


def _mad_kernel(r: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mad = 1.4826 * np.nanmedian(np.abs(r), axis=-1, keepdims=True)
        # count data (service requests) can have a zero MAD: fall back to the mean absolute
        # departure (× 1.2533, the normal-consistent factor)
        mean_ad = 1.2533 * np.nanmean(np.abs(r), axis=-1, keepdims=True)
    return np.broadcast_to(np.where(mad > 0, mad, mean_ad), r.shape).copy()


def _robust_z(da: xr.DataArray) -> xr.DataArray:
    keys = slot_keys(pd.DatetimeIndex(da.indexes["time"]))
    if da.chunks is not None:
        da = da.chunk({"time": -1})
    kw = dict(input_core_dims=[["time"]], output_core_dims=[["time"]], dask="parallelized", output_dtypes=[np.float64])
    dev = xr.apply_ufunc(_residual_kernel, da, kwargs={"keys": keys, "additive": True}, **kw)
    spread = xr.apply_ufunc(_mad_kernel, dev, **kw)
    return (dev / spread.where(spread > 0)).transpose(*da.dims)


def city_index(state: xr.Dataset, *, weights: Mapping[str, float] | None = None, spec: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Composite 0–100 index per zone and time, per system and overall, with contributions.

    Parameters
    ----------
    state
        :func:`workbench.integration.city_state` output (dims ``zone × time``).
    weights
        Overrides of the YAML weights: ``{system or indicator: weight}``.
    spec
        A parsed index spec instead of ``registry/index.yml``.

    Returns
    -------
    xarray.Dataset
        ``index`` and ``index_<system>`` (``zone × time``, 0–100), and ``score``,
        ``contribution``, ``points_lost``, ``z`` (``zone × time × indicator``) with the
        indicator's ``system`` and ``direction`` as coordinates. Lazy when the state is.
    """
    sp = load_index_spec(spec)
    w_over = dict(weights or {})
    names, systems, directions, wts = [], [], [], []
    for s, sd in sp["systems"].items():
        ws = float(w_over.get(s, sd.get("weight", 1)))
        for name, ind in (sd.get("indicators") or {}).items():
            if name not in state:
                continue
            names.append(name)
            systems.append(s)
            directions.append(ind["direction"])
            wts.append(ws * float(w_over.get(name, ind.get("weight", 1))))
    if not names:
        raise ValueError("none of the index's indicators is in the state; expected some of "
                         + ", ".join(n for sd in sp["systems"].values() for n in (sd.get("indicators") or {})) + ".")
    zs, scores = [], []
    for name, d in zip(names, directions):
        z = _robust_z(state[name])
        bad = z if d == "high" else (-z if d == "low" else abs(z))
        sc = 100.0 * (1.0 - ((bad - sp["z_ok"]) / (sp["z_bad"] - sp["z_ok"])).clip(0.0, 1.0))
        zs.append(z)
        scores.append(sc)
    ind = pd.Index(names, name="indicator")
    z = xr.concat(zs, dim=ind).transpose("zone", "time", "indicator")
    score = xr.concat(scores, dim=ind).transpose("zone", "time", "indicator")
    coords = {"system": ("indicator", np.array(systems, dtype=object)), "direction": ("indicator", np.array(directions, dtype=object))}
    score = score.assign_coords(coords)
    w = xr.DataArray(np.array(wts), dims="indicator", coords={"indicator": names})
    present = score.notnull()
    w_eff = (w * present) / (w * present).sum("indicator").where(lambda x: x > 0)
    contribution = (w_eff * score.fillna(0.0)).where(present)
    out = {
        "index": contribution.sum("indicator", min_count=1).assign_attrs(
            units="1", long_name="city index (100 = normal)", valid_min=0, valid_max=100),
        "score": score.assign_attrs(units="1", long_name="indicator score (100 = normal)"),
        "contribution": contribution.fillna(0.0).where(present.any("indicator")).assign_attrs(
            units="1", long_name="indicator contribution to the city index (sums to index)"),
        "points_lost": (w_eff * (100.0 - score)).fillna(0.0).where(present.any("indicator")).assign_attrs(
            units="1", long_name="index points lost to the indicator (sums to 100 - index)"),
        "z": z.assign_coords(coords).assign_attrs(units="1", long_name="robust z-score against the zone's normal"),
    }
    sys_arr = np.array(systems, dtype=object)
    for s in dict.fromkeys(systems):
        sel = score.isel(indicator=np.flatnonzero(sys_arr == s))
        ws_ = w.isel(indicator=np.flatnonzero(sys_arr == s)) * sel.notnull()
        out[f"index_{s}"] = ((ws_ * sel.fillna(0.0)).sum("indicator") / ws_.sum("indicator").where(lambda x: x > 0)).assign_attrs(
            units="1", long_name=f"{s} index (100 = normal)", valid_min=0, valid_max=100)
    hist = f"city_index(weights={dict(w_over) or None}, z_ok={sp['z_ok']}, z_bad={sp['z_bad']})"
    res = xr.Dataset(out, attrs={"long_name": "composite city index", "history": hist,
                                 "method": "robust z against the zone's hour-of-day normal; linear score between z_ok and z_bad; weighted means"})
    for c in ("zone_name", "lat", "lon"):
        if c in state.coords:
            res = res.assign_coords({c: state[c]})
    if "geojson" in state.attrs:
        res.attrs["geojson"] = state.attrs["geojson"]
    return res


def explain(index: xr.Dataset, zone: str, time=None, *, top: int = 5) -> pd.DataFrame:
    """The indicators that cost a zone the most index points (at ``time``, or its worst hour).

    Examples
    --------
    >>> from workbench.synth import make_city
    >>> from workbench.integration.state import city_state
    >>> ix = city_index(city_state(make_city(zones=4, sensors_per_system=8, days=7)))
    >>> list(explain(ix, "Z01").columns)
    ['system', 'indicator', 'z', 'score', 'points_lost', 'contribution']
    """
    sel = index.sel(zone=zone)
    if time is None:
        # boundary: one zone's index series (a few hundred values) to find its worst hour
        time = pd.Timestamp(sel["index"].idxmin("time").compute().to_numpy()[()])  # boundary: explain() reports one zone
    at = sel.sel(time=pd.Timestamp(time))
    # boundary: one zone and one time, a handful of values
    at = at[["z", "score", "points_lost", "contribution"]].compute()  # boundary: explain() reports one zone
    df = pd.DataFrame({
        "system": at["system"].to_numpy(), "indicator": at["indicator"].to_numpy(), "z": at["z"].to_numpy(),
        "score": at["score"].to_numpy(), "points_lost": at["points_lost"].to_numpy(), "contribution": at["contribution"].to_numpy(),
    })
    return df.sort_values("points_lost", ascending=False).head(top).reset_index(drop=True)
