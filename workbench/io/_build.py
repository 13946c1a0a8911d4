"""The one builder every reader uses: long observation rows -> validated cube + report.

A reader turns its payload into long rows (columns ``row, sensor, time, variable, value,
unit`` and optionally ``lat, lon, zone, flag``; raw text is fine) and feeds them, in as many
chunks as it likes, to a :class:`Collector`. The collector checks each record in the order of
:data:`workbench.io.report.REASONS`, keeps accepted records in a compact form (about 40 bytes
each: the memory bound of a streamed ingest), and :meth:`Collector.finish` resolves duplicates
and assembles the :class:`xarray.DataTree`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry
from workbench.io.report import REASONS, IngestReport, empty_quarantine
from workbench.units import UnitError, normalise_unit, to_canonical

__all__ = ["Collector", "parse_times", "to_float", "ROW_COLUMNS"]

#: columns a reader hands to :meth:`Collector.add` (``lat lon zone flag`` optional)
ROW_COLUMNS = ("row", "sensor", "time", "variable", "value", "unit")

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
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        t = pd.Series(values)
        t = t.dt.tz_convert("UTC") if t.dt.tz is not None else t.dt.tz_localize(naive_tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        return _bounded(t)
    s = _as_string(values)
    s = s.where(s != "")
    interval = s.str.contains(_INTERVAL, regex=True).fillna(False).astype(bool)
    if interval.any():
        s = s.where(~interval, s.str.split("/", n=1).str[0])
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    if time_format is not None:
        has_off = pd.Series(False, index=s.index)
        naive = pd.to_datetime(s, format=time_format, errors="coerce")
        if getattr(naive.dt, "tz", None) is not None:
            out = naive.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
            return _bounded(out)
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
    return _bounded(out)


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


class Collector:
    """Validate long rows chunk by chunk; build the cube and the report at the end.

    Parameters
    ----------
    source, sha256, format
        Provenance for the report.
    variables
        Extra spellings: raw variable label -> registry name (checked before the aliases).
    units
        Unit for records whose unit is empty, keyed by raw label or registry name.
    naive_tz
        Time zone of times written without an offset.
    time_format
        Explicit ``strftime`` format of the time column.
    """

    def __init__(
        self,
        *,
        source: str,
        sha256: str,
        format: str,
        variables: Mapping[str, str] | None = None,
        units: Mapping[str, str] | None = None,
        naive_tz: str = "UTC",
        time_format: str | None = None,
    ) -> None:
        self.source, self.sha256, self.format = source, sha256, format
        self.variables = {str(k).lower(): v for k, v in (variables or {}).items()}
        for v in self.variables.values():
            registry.variable(v)  # a clear KeyError for a mapping onto nothing
        self.units = {str(k).lower(): v for k, v in (units or {}).items()}
        self.naive_tz, self.time_format = naive_tz, time_format
        self.n_in = 0
        self.counts = dict.fromkeys(REASONS, 0)
        self._accepted: list[pd.DataFrame] = []
        self._quarantined: list[pd.DataFrame] = []
        self._label_cache: dict[str, str | None] = {}
        self._factor_cache: dict[tuple[str, str], tuple[float, float] | str] = {}

    # -- input -------------------------------------------------------------------------------
    def quarantine(self, rows: pd.DataFrame, reason: str, detail: str | pd.Series = "") -> None:
        """Count ``rows`` (raw, any of :data:`ROW_COLUMNS`) as read and quarantined for ``reason``."""
        if not len(rows):
            return
        self.n_in += len(rows)
        self.counts[reason] += len(rows)
        self._quarantined.append(_raw_table(rows, reason, detail))

    def add(self, rows: pd.DataFrame) -> None:
        """Validate one chunk of long rows (see :data:`ROW_COLUMNS`)."""
        n = len(rows)
        if not n:
            return
        rows = rows.reset_index(drop=True)
        self.n_in += n
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, "", dtype=object)

        def mark(mask: np.ndarray, why: str) -> None:
            hit = mask & (reason == None)  # noqa: E711 - elementwise
            reason[hit] = why

        sensor = _as_string(rows["sensor"])
        mark(sensor.isna().to_numpy() | (sensor == "").fillna(True).to_numpy(), "missing_sensor")

        labels = _as_string(rows["variable"])
        uniq = labels.dropna().unique()
        names = {lab: self._resolve(lab) for lab in uniq}
        var = labels.map(names)
        mark(var.isna().to_numpy(), "unknown_variable")

        t = parse_times(rows["time"], naive_tz=self.naive_tz, time_format=self.time_format)
        mark(np.isnat(t), "unparseable_time")

        v = to_float(rows["value"])
        mark(np.isnan(v), "non_numeric_value")

        unit = _as_string(rows["unit"]) if "unit" in rows else pd.Series(pd.NA, index=rows.index, dtype="string")
        unit = unit.fillna("")
        if self.units:
            fill = labels.str.lower().map(self.units).fillna(var.map(self.units))
            unit = unit.where(unit != "", fill.fillna(""))
        scale = np.full(n, np.nan)
        offset = np.zeros(n)
        ok = (reason == None)  # noqa: E711
        pairs = pd.DataFrame({"var": var, "unit": unit})[ok].drop_duplicates()
        for vname, u in pairs.itertuples(index=False):
            f = self._factor(vname, u)
            sel = ok & (var == vname).fillna(False).to_numpy() & (unit == u).to_numpy()
            if isinstance(f, str):
                reason[sel & (reason == None)] = "unknown_unit"  # noqa: E711
                detail[sel] = f
            else:
                scale[sel], offset[sel] = f
        canon = v * scale + offset

        ok = (reason == None)  # noqa: E711
        if ok.any():
            known = [x for x in names.values() if x]
            vmin = var.map({x: float(registry.variable(x)["valid_min"]) for x in known}).astype("float64").to_numpy(na_value=np.nan)
            vmax = var.map({x: float(registry.variable(x)["valid_max"]) for x in known}).astype("float64").to_numpy(na_value=np.nan)
            out = ok & ((canon < vmin) | (canon > vmax))
            reason[out] = "out_of_range"
            detail[out] = [f"{c:.6g} outside [{lo:g}, {hi:g}]" for c, lo, hi in zip(canon[out], vmin[out], vmax[out])]
        for lab_mask in (reason == "unknown_variable",):
            if lab_mask.any():
                detail[lab_mask] = "not a registered variable or alias"

        bad = reason != None  # noqa: E711
        for why in REASONS:
            self.counts[why] += int((reason == why).sum())
        if bad.any():
            self._quarantined.append(_raw_table(rows[bad], pd.Series(reason[bad]), pd.Series(detail[bad])))
        good = ~bad
        if good.any():
            acc = pd.DataFrame(
                {
                    "row": rows["row"].to_numpy(dtype="int64")[good],
                    "sensor": sensor[good].to_numpy(dtype=object),
                    "variable": var[good].to_numpy(dtype=object),
                    "time": t[good],
                    "value": canon[good],
                }
            )
            acc["sensor"] = acc["sensor"].astype("category")
            acc["variable"] = acc["variable"].astype("category")
            for c in ("lat", "lon"):
                acc[c] = to_float(rows[c])[good] if c in rows else np.nan
            acc["zone"] = _as_string(rows["zone"])[good].to_numpy(dtype=object) if "zone" in rows else None
            acc["flag"] = _truthy(rows["flag"])[good] if "flag" in rows else False
            self._accepted.append(acc)

    def _resolve(self, label: str) -> str | None:
        if label not in self._label_cache:
            self._label_cache[label] = self.variables.get(label.lower()) or registry.resolve_alias(label)
        return self._label_cache[label]

    def _factor(self, variable: str, unit: str) -> tuple[float, float] | str:
        key = (variable, unit)
        if key not in self._factor_cache:
            try:
                a, b = to_canonical(np.array([0.0, 1.0]), unit, variable)
                self._factor_cache[key] = (float(b - a), float(a))
            except UnitError as exc:
                self._factor_cache[key] = str(exc)
        return self._factor_cache[key]

    # -- output ------------------------------------------------------------------------------
    def finish(self) -> tuple[xr.DataTree, IngestReport]:
        """Resolve duplicates, assemble the cube, and reconcile the report."""
        acc = (
            pd.concat(self._accepted, ignore_index=True)
            if self._accepted
            else pd.DataFrame({"row": [], "sensor": [], "variable": [], "time": np.array([], "datetime64[ns]"), "value": []})
        )
        if self._accepted:
            acc["sensor"] = acc["sensor"].astype(object)
            acc["variable"] = acc["variable"].astype(object)
        merged = 0
        keys = ["sensor", "variable", "time"]
        dup = acc.duplicated(keys, keep=False).to_numpy() if len(acc) else np.zeros(0, bool)
        if dup.any():
            d = acc[dup]
            spread = d.groupby(keys, sort=False, observed=True)["value"].transform(lambda x: x.max() - x.min())
            scale = d.groupby(keys, sort=False, observed=True)["value"].transform(lambda x: x.abs().max())
            conflict = (spread > 1e-9 * np.maximum(scale, 1.0)).to_numpy()
            bad_idx = d.index[conflict]
            if len(bad_idx):
                q = acc.loc[bad_idx].sort_values(keys + ["row"])
                vals = q.groupby(keys, sort=False)["value"].transform(lambda x: ", ".join(f"{y:.6g}" for y in x))
                table = pd.DataFrame(
                    {
                        "row": q["row"].astype("int64"),
                        "sensor": q["sensor"],
                        "time": pd.Series(q["time"]).dt.strftime("%Y-%m-%dT%H:%M:%S"),
                        "variable": q["variable"],
                        "value": q["value"].map(lambda y: f"{y:.17g}"),
                        "unit": q["variable"].map(lambda x: registry.variable(x)["units"]),
                    }
                )
                self._quarantined.append(_raw_table(table, "duplicate_conflict", "conflicting values: " + vals))
                self.counts["duplicate_conflict"] += len(bad_idx)
                acc = acc.drop(index=bad_idx)
            before = len(acc)
            acc = acc.drop_duplicates(keys, keep="first")
            merged = before - len(acc)
        n_accepted = len(acc) + merged
        flagged = acc[acc["flag"].astype(bool)] if "flag" in acc and len(acc) else acc.iloc[0:0]
        quarantined = (
            pd.concat(self._quarantined, ignore_index=True).sort_values(["row", "reason"], kind="stable").reset_index(drop=True)
            if self._quarantined
            else empty_quarantine()
        )
        report = IngestReport(
            source=self.source,
            sha256=self.sha256,
            format=self.format,
            n_in=self.n_in,
            n_accepted=n_accepted,
            reasons=self.counts,
            quarantined=quarantined,
            n_duplicates_merged=merged,
            n_flagged_by_source=len(flagged),
            flagged=pd.DataFrame(
                {
                    "sensor": pd.Series(flagged.get("sensor", []), dtype="string"),
                    "time": pd.Series(flagged.get("time", []), dtype="datetime64[ns]"),
                    "variable": pd.Series(flagged.get("variable", []), dtype="string"),
                }
            ).reset_index(drop=True),
        )
        return assemble(acc, history=f"workbench.io: {n_accepted} records read from {self.format} source"), report


def _truthy(values: pd.Series) -> np.ndarray:
    s = _as_string(values).str.lower()
    return s.isin(["true", "1", "yes", "y", "t", "suspect"]).fillna(False).to_numpy(dtype=bool)


def _raw_table(rows: pd.DataFrame, reason: str | pd.Series, detail: str | pd.Series) -> pd.DataFrame:
    n = len(rows)
    out: dict[str, Any] = {"row": rows["row"].to_numpy(dtype="int64") if "row" in rows else np.zeros(n, "int64")}
    out["reason"] = reason.to_numpy(dtype=object) if isinstance(reason, pd.Series) else [reason] * n
    for c in ("sensor", "time", "variable", "value", "unit"):
        out[c] = _as_string(rows[c]).to_numpy(dtype=object) if c in rows else [pd.NA] * n
    out["detail"] = detail.to_numpy(dtype=object) if isinstance(detail, pd.Series) else [detail] * n
    table = pd.DataFrame(out)
    for c in table.columns[1:]:
        table[c] = table[c].astype("string")
    return table


def _coords(acc: pd.DataFrame, sensors: np.ndarray) -> dict[str, Any]:
    site = acc.groupby("sensor", sort=True)[["lat", "lon"]].first() if len(acc) else None
    zone = acc.dropna(subset=["zone"]).groupby("sensor", sort=True)["zone"].first() if "zone" in acc and acc["zone"].notna().any() else pd.Series(dtype=object)
    lat = site["lat"].reindex(sensors).to_numpy(dtype="float64") if site is not None else np.full(len(sensors), np.nan)
    lon = site["lon"].reindex(sensors).to_numpy(dtype="float64") if site is not None else np.full(len(sensors), np.nan)
    z = np.array([str(zone.get(s, "")) if pd.notna(zone.get(s, "")) else "" for s in sensors], dtype=object)
    return {
        "lat": ("sensor", lat, {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("sensor", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        "zone": ("sensor", z, {"long_name": "zone"}),
    }


def assemble(acc: pd.DataFrame, *, history: str = "") -> xr.DataTree:
    """Accepted, de-duplicated rows (canonical units) -> one ``(sensor, time)`` node per system."""
    nodes: dict[str, xr.Dataset] = {}
    if len(acc):
        acc = acc.assign(system=acc["variable"].map({v: registry.system_of(v) for v in acc["variable"].unique()}))
    for system in registry.SYSTEMS:
        sub = acc[acc["system"] == system] if len(acc) else acc
        if not len(sub):
            continue
        sensors = np.array(sorted(sub["sensor"].unique()), dtype=object)
        times = np.unique(sub["time"].to_numpy(dtype="datetime64[ns]"))
        si = np.searchsorted(sensors.astype(str), sub["sensor"].to_numpy(dtype=str))
        ti = np.searchsorted(times, sub["time"].to_numpy(dtype="datetime64[ns]"))
        data_vars = {}
        for name in registry.variables_of(system):
            m = (sub["variable"] == name).to_numpy()
            if not m.any():
                continue
            arr = np.full((len(sensors), len(times)), np.nan)
            arr[si[m], ti[m]] = sub["value"].to_numpy(dtype="float64")[m]
            entry = registry.variable(name)
            attrs = {"units": entry["units"], "long_name": entry["long_name"], "system": system}
            if entry.get("standard_name"):
                attrs["standard_name"] = entry["standard_name"]
            data_vars[name] = (("sensor", "time"), arr, attrs)
        coords = {"sensor": ("sensor", sensors), "time": ("time", times), **_coords(sub, sensors)}
        nodes[f"/{system}"] = xr.Dataset(data_vars, coords=coords)
    tree = xr.DataTree.from_dict(nodes) if nodes else xr.DataTree()
    if history:
        tree.attrs["history"] = history
    return tree


def sensor_join(parts: list[pd.Series], *, sep: str = ":") -> pd.Series:
    """Join several id columns into one sensor id (missing parts make the id missing)."""
    out = _as_string(parts[0])
    for p in parts[1:]:
        out = out + sep + _as_string(p)
    return out


