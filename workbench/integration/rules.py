"""Response rules: conditions over incidents, the city index and the city state → alerts.

The rules are data (``workbench/registry/rules.yml``; its header documents the schema). Each
rule names a condition and the alert to send: CAP 1.2 severity, urgency, certainty,
category and response type, the domain that must act (public safety, environment, urban
services, livelihood, industry and commerce) and a recommended action. :func:`respond`
evaluates every rule in every zone and returns one alert per match, each with the incident
or indicator behind it. Nothing is evaluated with ``eval``: conditions are a small,
validated vocabulary.

Alert columns (stable): :data:`ALERT_COLUMNS`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from workbench import registry

__all__ = ["ALERT_COLUMNS", "DOMAINS", "RuleError", "load_rules", "respond"]

DOMAINS = ("public_safety", "environment", "urban_services", "livelihood", "industry_commerce")
ALERT_COLUMNS = [
    "alert_id", "rule", "zone", "start", "end", "event", "domain", "category", "severity", "urgency",
    "certainty", "response", "action", "sdm_category", "sdm_subcategory", "incident_kind",
    "confidence", "headline", "description", "evidence",
]
_CAP = {
    "category": {"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"},
    "severity": {"Extreme", "Severe", "Moderate", "Minor", "Unknown"},
    "urgency": {"Immediate", "Expected", "Future", "Past", "Unknown"},
    "certainty": {"Observed", "Likely", "Possible", "Unlikely", "Unknown"},
    "response": {"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"},
}
_SDM_CATEGORIES = {"traffic", "naturalDisaster", "weather", "environment", "health", "security", "agriculture"}
_INCIDENT_KINDS = ("heatwave", "water_leak", "power_outage", "network_outage", "traffic_incident", "public_gathering", "sensor_fault")


class RuleError(ValueError):
    """A rules file breaks its schema."""


def load_rules(rules: str | os.PathLike | list | dict | None = None) -> list[dict[str, Any]]:
    """Load and validate response rules (default: the registry's ``rules.yml``).

    Parameters
    ----------
    rules
        A path to a YAML file, a parsed mapping (``{"rules": [...]}``), a list of rules, or
        None for the built-in rules.

    Examples
    --------
    >>> [r["id"] for r in load_rules()][:2]
    ['water-leak', 'power-outage']
    """
    where = "registry/rules.yml"
    if rules is None:
        data = registry.load_yaml("rules.yml")
    elif isinstance(rules, (str, os.PathLike)):
        where = str(rules)
        p = Path(rules)
        if not p.is_file():
            raise RuleError(f"{where}: no such rules file.")
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    else:
        data = rules
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise RuleError(f"{where}: expected a non-empty 'rules' list.")
    seen = set()
    for i, r in enumerate(items):
        rid = r.get("id") if isinstance(r, dict) else None
        at = f"{where}: rule {rid or i}"
        if not rid or not isinstance(rid, str):
            raise RuleError(f"{at}: every rule needs an 'id'.")
        if rid in seen:
            raise RuleError(f"{at}: the id is used twice.")
        seen.add(rid)
        conds = _conditions(r.get("when"), at)
        if not any("incident" in c or "index" in c for c in conds):
            raise RuleError(f"{at}: 'when' needs an incident or index condition ('state' only refines one).")
        a = r.get("alert")
        if not isinstance(a, dict):
            raise RuleError(f"{at}: missing the 'alert' mapping.")
        for key in ("event", "domain", "category", "severity", "urgency", "response", "action"):
            if not a.get(key):
                raise RuleError(f"{at}: alert needs '{key}'.")
        if a["domain"] not in DOMAINS:
            raise RuleError(f"{at}: domain {a['domain']!r} is not one of {', '.join(DOMAINS)}.")
        for key, allowed in _CAP.items():
            if key in a and a[key] not in allowed:
                raise RuleError(f"{at}: {key} {a[key]!r} is not a CAP 1.2 value ({', '.join(sorted(allowed))}).")
        if a.get("sdm_category") and a["sdm_category"] not in _SDM_CATEGORIES:
            raise RuleError(f"{at}: sdm_category {a['sdm_category']!r} is not a Smart Data Models Alert category.")
    return items


def _conditions(when, at: str) -> list[dict]:
    if not isinstance(when, dict):
        raise RuleError(f"{at}: 'when' must be a mapping.")
    conds = when["all"] if "all" in when else [when]
    for c in conds:
        if not isinstance(c, dict):
            raise RuleError(f"{at}: each condition must be a mapping.")
        if "incident" in c:
            if c["incident"] not in _INCIDENT_KINDS:
                raise RuleError(f"{at}: unknown incident kind {c['incident']!r} (expected one of {', '.join(_INCIDENT_KINDS)}).")
        elif "index" in c:
            ix = c["index"]
            if not isinstance(ix, dict) or "below" not in ix:
                raise RuleError(f"{at}: an index condition needs 'below'.")
        elif "state" in c:
            st = c["state"]
            if not isinstance(st, dict) or "variable" not in st or not ({"above_quantile", "kpi_status"} & set(st)):
                raise RuleError(f"{at}: a state condition needs 'variable' and 'above_quantile' (or 'kpi_status' for a KPI).")
            if st["variable"] in _kpi_ids():
                if "kpi_status" in st and st["kpi_status"] not in ("warning", "critical"):
                    raise RuleError(f"{at}: kpi_status must be 'warning' or 'critical', got {st['kpi_status']!r}.")
            else:
                if "kpi_status" in st:
                    raise RuleError(f"{at}: kpi_status needs a KPI of registry/kpis.yml, not {st['variable']!r}.")
                try:
                    registry.variable(st["variable"])
                except Exception as exc:  # registry raises its own error type; re-word it
                    raise RuleError(f"{at}: state variable {st['variable']!r} is not registered (nor a KPI of kpis.yml).") from exc
        else:
            raise RuleError(f"{at}: conditions are 'incident', 'index' or 'state', got {sorted(c)}.")
    return conds


def _windows(conds, zone, incidents, index) -> list[dict]:
    """Windows (start, end, source incident or index) where the primary condition holds."""
    out = []
    for c in conds:
        if "incident" in c:
            sel = incidents[(incidents["kind"] == c["incident"]) & (incidents["zone"] == zone)]
            if "min_confidence" in c:
                sel = sel[sel["confidence"] >= float(c["min_confidence"])]
            if "min_severity" in c:
                sel = sel[sel["severity"] >= float(c["min_severity"])]
            if "min_hours" in c:
                sel = sel[(sel["end"] - sel["start"]) >= pd.Timedelta(hours=float(c["min_hours"]))]
            out += [{"start": r.start, "end": r.end, "incident": r._asdict()} for r in sel.itertuples(index=False)]
            return out
        if "index" in c and index is not None:
            ix = c["index"]
            name = "index" if ix.get("system", "overall") == "overall" else f"index_{ix['system']}"
            if name not in index or zone not in index["zone"]:
                return out
            s = index[name].sel(zone=zone).to_series()
            low = (s < float(ix["below"])).to_numpy()
            step = s.index[1] - s.index[0] if len(s) > 1 else pd.Timedelta("1h")
            need = max(1, int(pd.Timedelta(hours=float(ix.get("min_hours", 0))) / step))
            i = 0
            while i < len(low):
                if low[i]:
                    j = i
                    while j + 1 < len(low) and low[j + 1]:
                        j += 1
                    if j - i + 1 >= need:
                        out.append({"start": s.index[i], "end": s.index[j], "index": float(s.iloc[i:j + 1].min()), "index_name": name})
                    i = j + 1
                else:
                    i += 1
            return out
    return out


def _kpi_ids() -> set[str]:
    from workbench.analysis.kpis import load_kpis

    return set(load_kpis())


def _nanext(win: xr.DataArray, how: str) -> float:
    """NaN-skipping max / min of a small window with numpy (xarray's goes to numbagg, whose
    reduction kernels cannot be cached and cost ~1–9 s of JIT in every fresh process)."""
    v = np.asarray(win.to_numpy(), dtype=np.float64)
    if v.size == 0 or np.isnan(v).all():
        return float("nan")
    return float(np.nanmax(v) if how == "max" else np.nanmin(v))


def _state_holds(c, zone, start, end, state, quantiles) -> tuple[bool, float]:
    var = c["state"]["variable"]
    if state is None or var not in state or zone not in state["zone"]:
        return False, np.nan
    if "kpi_status" in c["state"]:
        # a KPI past its warning / critical threshold in its bad direction (kpis.yml)
        a = state[var].attrs
        lim = float(a[f"threshold_{c['state']['kpi_status']}"])
        win = state[var].sel(zone=zone, time=slice(start, end))
        if win.sizes.get("time", 0) == 0:
            return False, np.nan
        # boundary: the window of one zone (a few values)
        worst = _nanext(win, "max" if a.get("good") == "low" else "min")
        bad = worst >= lim if a.get("good") == "low" else worst <= lim
        return bool(bad), worst
    q = float(c["state"]["above_quantile"])
    key = (var, q)
    if key not in quantiles:
        # boundary: a per-zone quantile over the record, a zone-length vector (numpy's
        # nanquantile: xarray's may JIT-compile a numbagg kernel, slow on first use)
        arr = state[var].transpose("zone", "time").compute()  # boundary: rules read the small zone × time state
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            qv = np.nanquantile(arr.to_numpy(), q, axis=1)
        quantiles[key] = pd.Series(qv, index=[str(z) for z in arr["zone"].to_numpy()])
    win = state[var].sel(zone=zone, time=slice(start, end))
    if win.sizes.get("time", 0) == 0:
        return False, np.nan
    # boundary: the window of one zone (a few values)
    peak = _nanext(win, "max")
    return bool(peak > quantiles[key].get(zone, np.inf)), peak


def respond(
    state: xr.Dataset | None,
    incidents: pd.DataFrame,
    *,
    rules: str | os.PathLike | list | dict | None = None,
    index: xr.Dataset | None = None,
) -> pd.DataFrame:
    """Turn incidents, the index and the state into routed alerts.

    Parameters
    ----------
    state
        The city state (:func:`workbench.integration.city_state`, dims ``zone × time``), used by
        ``state`` conditions; may be None when no rule needs it.
    incidents
        :func:`workbench.integration.detect_incidents` output.
    rules
        Rules file, parsed rules, or None for ``registry/rules.yml``.
    index
        :func:`workbench.integration.city_index` output, for ``index`` conditions (when None
        and ``state`` is given, it is computed from the state).

    Returns
    -------
    pandas.DataFrame
        One alert per rule match, columns :data:`ALERT_COLUMNS`, sorted by start.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp("2026-07-06 03:00")
    >>> inc = pd.DataFrame([{"kind": "water_leak", "zone": "Z01", "start": t, "end": t + pd.Timedelta("5h"),
    ...                      "severity": 0.03, "confidence": 0.9, "evidence": "[]"}])
    >>> respond(None, inc)[["rule", "domain", "severity"]].to_dict("records")
    [{'rule': 'water-leak', 'domain': 'urban_services', 'severity': 'Moderate'}]
    """
    items = load_rules(rules)
    incidents = incidents if incidents is not None else pd.DataFrame(columns=["kind", "zone", "start", "end", "severity", "confidence", "evidence"])
    needs_index = any("index" in c for r in items for c in _conditions(r["when"], r["id"]))
    if needs_index and index is None and state is not None:
        from workbench.integration.index import city_index

        index = city_index(state)
    if index is not None and needs_index:
        # boundary: the index is small (zone × time) and rules walk it in time
        index = index.compute()  # boundary: the small index
    zones = sorted(set(incidents["zone"].astype(str)) | (set(map(str, index["zone"].values)) if index is not None and needs_index else set()))  # boundary: small zone coordinate
    quantiles: dict = {}
    rows = []
    for r in items:
        conds = _conditions(r["when"], r["id"])
        refine = [c for c in conds if "state" in c]
        for zone in zones:
            for w in _windows(conds, zone, incidents, index):
                extra = []
                ok = True
                for c in refine:
                    holds, peak = _state_holds(c, zone, w["start"], w["end"], state, quantiles)
                    ok &= holds
                    extra.append({"variable": c["state"]["variable"], "peak": peak, "above_quantile": c["state"].get("above_quantile"), "kpi_status": c["state"].get("kpi_status")})
                if ok:
                    rows.append(_alert(r, zone, w, extra))
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in ALERT_COLUMNS})
    out = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    return out.sort_values(["start", "zone", "rule"], kind="stable").reset_index(drop=True)


def _alert(rule: dict, zone: str, w: dict, extra: list) -> dict:
    a = rule["alert"]
    inc = w.get("incident")
    conf = float(inc["confidence"]) if inc is not None and pd.notna(inc.get("confidence")) else np.nan
    certainty = a.get("certainty") or ("Likely" if (np.isfinite(conf) and conf >= 0.8) else "Possible")
    start, end = pd.Timestamp(w["start"]), pd.Timestamp(w["end"])
    key = f"{rule['id']}|{zone}|{start.isoformat()}|{end.isoformat()}"
    alert_id = "wb-" + hashlib.sha1(key.encode()).hexdigest()[:16]
    if inc is not None:
        sev = inc.get("severity")
        what = f"{inc['kind'].replace('_', ' ')} detected in {zone} (severity {sev:.3g}, confidence {conf:.2f})"
        evidence = inc.get("evidence") or "[]"
    else:
        what = f"{w.get('index_name', 'index')} of {zone} fell to {w.get('index', np.nan):.0f} / 100"
        evidence = json.dumps([{"indicator": w.get("index_name"), "min": w.get("index")}])
    if extra:
        ev = json.loads(evidence)
        ev += extra
        evidence = json.dumps(ev, default=float)
    return {
        "alert_id": alert_id, "rule": rule["id"], "zone": zone, "start": start, "end": end,
        "event": a["event"], "domain": a["domain"], "category": a["category"], "severity": a["severity"],
        "urgency": a["urgency"], "certainty": certainty, "response": a["response"], "action": a["action"],
        "sdm_category": a.get("sdm_category", ""), "sdm_subcategory": a.get("sdm_subcategory", ""),
        "incident_kind": inc["kind"] if inc is not None else "", "confidence": conf,
        "headline": f"{a['event']} in {zone}",
        "description": f"{what}, from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}.",
        "evidence": evidence,
    }
