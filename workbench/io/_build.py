"""The one builder every reader uses: long observation rows -> validated cube + report.

A reader turns its payload into long rows (columns ``row, sensor, time, variable, value,
unit`` and optionally ``lat, lon, zone, flag``; raw text is fine) and feeds them, in as many
chunks as it likes, to a :class:`Collector` (:meth:`Collector.add`, or column-wise as codes
with :meth:`Collector.add_block`). The collector checks each record in the order of
:data:`workbench.io.report.REASONS`, keeps accepted records in a compact form (about 26 bytes
each: the memory bound of a streamed ingest), and :meth:`Collector.finish` resolves duplicates
and assembles the :class:`xarray.DataTree` (:mod:`workbench.io._cube`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench import registry
from workbench.io._columns import _Col, _ext, _Interner, _stripped, col_from_arrow, col_from_series, uniques_series
from workbench.io._cube import Accepted, Tables, assemble, build_tree, conflict_table, dedupe
from workbench.io._parse import _as_string, _parse_times, _truthy, parse_times, to_float
from workbench.io.report import REASONS, IngestReport, empty_quarantine
from workbench.units import UnitError, to_canonical

__all__ = ["Collector", "parse_times", "to_float", "ROW_COLUMNS", "assemble", "col_from_arrow", "col_from_series", "sensor_join"]

#: columns a reader hands to :meth:`Collector.add` (``lat lon zone flag`` optional)
ROW_COLUMNS = ("row", "sensor", "time", "variable", "value", "unit")

_R = {name: i + 1 for i, name in enumerate(REASONS)}
_REASON_NAMES = np.array([None, *REASONS], dtype=object)
_NAT = np.iinfo(np.int64).min
_TIME_CACHE_MAX = 1_000_000


class Collector:
    """Validate long rows block by block; build the cube and the report at the end.

    Each block is handled column-wise: text columns are factorized (or arrive
    dictionary-encoded from Arrow), so labels are stripped, resolved, parsed and converted
    once per *distinct* value (times through a cache that spans blocks), units once per
    distinct (variable, unit) pair, and every check is one vectorised pass. Accepted
    readings are kept as integer codes (:class:`workbench.io._cube.Accepted`).

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
        self._quarantined: list[pd.DataFrame] = []
        self._label_cache: dict[str, str | None] = {}
        self._factor_cache: dict[tuple[str, str], tuple[float, float] | str] = {}
        self._var_names = list(registry.load_variables())
        self._var_sys = np.array([registry.SYSTEMS.index(registry.system_of(x)) for x in self._var_names], dtype=np.int64)
        self._vmin = np.array([float(registry.variable(x)["valid_min"]) for x in self._var_names])
        self._vmax = np.array([float(registry.variable(x)["valid_max"]) for x in self._var_names])
        self._sensors = _Interner("object")
        self._times = _Interner("int64")
        self._tcache: Any = None  # Arrow array of cached time spellings, parallel to _tcache_ns
        self._tcache_ns: list[np.ndarray] = []
        self._sites: dict[tuple[Any, Any, Any], int] = {}
        self._site_rows: list[tuple[float, float, Any]] = []
        self._acc = Accepted()

    # -- input -------------------------------------------------------------------------------
    def reserve(self, n: int) -> None:
        """Expect about ``n`` more records (a hint: the accepted store is sized once)."""
        self._acc.reserve(self._acc.n + int(n))

    def quarantine(self, rows: pd.DataFrame, reason: str, detail: str | pd.Series = "") -> None:
        """Count ``rows`` (raw, any of :data:`ROW_COLUMNS`) as read and quarantined for ``reason``."""
        if not len(rows):
            return
        self.n_in += len(rows)
        self.counts[reason] += len(rows)
        self._quarantined.append(_raw_table(rows, reason, detail))

    def add(self, rows: pd.DataFrame) -> None:
        """Validate one chunk of long rows (a DataFrame, see :data:`ROW_COLUMNS`)."""
        if not len(rows):
            return
        rows = rows.reset_index(drop=True)
        opt = {c: col_from_series(rows[c]) for c in ("unit", "zone") if c in rows}
        for c in ("lat", "lon"):
            if c in rows:
                opt[c] = col_from_series(pd.Series(to_float(rows[c])))
        self.add_block(
            row=rows["row"].to_numpy(dtype="int64"),
            sensor=col_from_series(rows["sensor"]),
            variable=col_from_series(rows["variable"]),
            time=col_from_series(rows["time"]),
            value=to_float(rows["value"]),
            raw_value=lambda idx: _as_string(rows["value"].iloc[idx]).to_numpy(dtype=object, na_value=pd.NA),
            flag=_truthy(rows["flag"]) if "flag" in rows else None,
            **opt,
        )

    def add_block(
        self,
        *,
        row: np.ndarray,
        sensor: _Col,
        variable: _Col,
        time: _Col,
        value: np.ndarray,
        raw_value: Callable[[np.ndarray], np.ndarray],
        unit: _Col | None = None,
        lat: _Col | None = None,
        lon: _Col | None = None,
        zone: _Col | None = None,
        flag: np.ndarray | None = None,
    ) -> None:
        """Validate one block given column-wise (see :func:`col_from_series`, :func:`col_from_arrow`).

        ``value`` is the float value of each row (NaN where not a finite number) and
        ``raw_value(positions)`` its text, asked for only for quarantined rows.
        """
        n = len(row)
        if not n:
            return
        self.n_in += n
        why = np.zeros(n, dtype=np.int8)
        detail = np.full(n, "", dtype=object)

        def mark(mask: np.ndarray, reason: str) -> None:
            why[(why == 0) & mask] = _R[reason]

        us = _stripped(sensor.uniques)
        named = np.array([not (x is pd.NA or x == "") for x in us], dtype=bool)
        s_code = np.full(len(us), -1, dtype=np.int64)
        if named.any():
            s_code[named] = self._sensors.codes(us[named])
        s_row = _ext(s_code, sensor.codes, -1)
        mark(s_row < 0, "missing_sensor")

        labels = _stripped(variable.uniques)
        names = [None if lab is pd.NA else self._resolve(lab) for lab in labels]
        v_code = np.array([-1 if x is None else self._var_names.index(x) for x in names], dtype=np.int64)
        v_row = _ext(v_code, variable.codes, -1)
        mark(v_row < 0, "unknown_variable")
        detail[why == _R["unknown_variable"]] = "not a registered variable or alias"

        ns = self._unique_times(time.uniques)
        t_code = np.full(len(ns), -1, dtype=np.int64)
        if (ns != _NAT).any():
            t_code[ns != _NAT] = self._times.codes(ns[ns != _NAT])
        t_row = _ext(t_code, time.codes, -1)
        mark(t_row < 0, "unparseable_time")
        mark(np.isnan(value), "non_numeric_value")

        canon = np.full(n, np.nan)
        ok = np.flatnonzero(why == 0)
        if len(ok):
            units = _stripped(unit.uniques) if unit is not None else np.array([], dtype=object)
            u_codes = unit.codes[ok] if unit is not None else np.full(len(ok), -1)
            nu = len(units) + 1
            pairs, inv = np.unique(variable.codes[ok].astype(np.int64) * nu + (u_codes + 1), return_inverse=True)
            scale = np.full(len(pairs), np.nan)
            offset = np.zeros(len(pairs))
            bad_pair = np.full(len(pairs), None, dtype=object)
            for i, key in enumerate(pairs.tolist()):
                lab = labels[key // nu]
                vname = names[key // nu]
                u = units[key % nu - 1] if key % nu else ""
                u = "" if u is pd.NA else u
                if u == "" and self.units:
                    u = self.units.get(lab.lower(), self.units.get(vname, ""))
                f = self._factor(vname, u)
                if isinstance(f, str):
                    bad_pair[i] = f
                else:
                    scale[i], offset[i] = f
            canon[ok] = value[ok] * scale[inv] + offset[inv]
            unknown = np.array([x is not None for x in bad_pair], dtype=bool)
            if unknown.any():
                hit = ok[unknown[inv]]
                why[hit] = _R["unknown_unit"]
                detail[hit] = bad_pair[inv[unknown[inv]]]
            ok = ok[~unknown[inv]]
            vr = v_row[ok]
            out = (canon[ok] < self._vmin[vr]) | (canon[ok] > self._vmax[vr])
            if out.any():
                hit = ok[out]
                why[hit] = _R["out_of_range"]
                detail[hit] = [f"{c:.6g} outside [{lo:g}, {hi:g}]" for c, lo, hi in
                               zip(canon[hit], self._vmin[v_row[hit]], self._vmax[v_row[hit]])]

        counts = np.bincount(why, minlength=len(REASONS) + 1)
        for name, i in _R.items():
            self.counts[name] += int(counts[i])
        bad = np.flatnonzero(why)
        if len(bad):
            def text(col: _Col | None) -> Any:
                return _ext(_stripped(col.uniques), col.codes[bad], pd.NA) if col is not None else [pd.NA] * len(bad)

            table = pd.DataFrame({"row": row[bad], "sensor": text(sensor), "time": text(time), "variable": text(variable),
                                  "value": raw_value(bad), "unit": text(unit)})
            self._quarantined.append(_raw_table(table, pd.Series(_REASON_NAMES[why[bad]]), pd.Series(detail[bad])))
        good = np.flatnonzero(why == 0)
        if len(good):
            cols: dict[str, np.ndarray] = {"row": row[good], "sensor": s_row[good], "var": v_row[good],
                                           "time": t_row[good], "value": canon[good]}
            if lat is not None or lon is not None or zone is not None:
                cols["site"] = self._site_codes(good, lat, lon, zone)
            if flag is not None:
                cols["flag"] = np.asarray(flag, dtype=bool)[good]
            self._acc.append(system=self._var_sys[cols["var"]], **cols)

    def _site_codes(self, good: np.ndarray, lat: _Col | None, lon: _Col | None, zone: _Col | None) -> np.ndarray:
        """Site (lat, lon, zone) code of each accepted row: the triples are few, rows many."""
        parts = []
        for col, kind in ((lat, "f"), (lon, "f"), (zone, "z")):
            if col is None:
                parts.append((np.zeros(len(good), np.int64), np.array([np.nan if kind == "f" else None], dtype=object), 1))
                continue
            vals = to_float(uniques_series(col.uniques)) if kind == "f" else _stripped(col.uniques)
            vals = np.append(np.asarray(vals, dtype=object), np.nan if kind == "f" else pd.NA)
            parts.append((np.where(col.codes[good] < 0, len(vals) - 1, col.codes[good]).astype(np.int64), vals, len(vals)))
        (a, av, na), (b, bv, nb), (c, cv, nc) = parts
        keys, inv = np.unique((a * nb + b) * nc + c, return_inverse=True)
        codes = np.empty(len(keys), dtype=np.int64)
        for i, k in enumerate(keys.tolist()):
            la, lo, z = float(av[k // (nb * nc)]), float(bv[(k // nc) % nb]), cv[k % nc]
            z = None if z is pd.NA else z
            key = (None if np.isnan(la) else la, None if np.isnan(lo) else lo, z)
            if key not in self._sites:
                self._sites[key] = len(self._site_rows)
                self._site_rows.append((la, lo, z))
            codes[i] = self._sites[key]
        return codes[inv]

    def _unique_times(self, uniques: Any) -> np.ndarray:
        """Distinct raw times -> int64 ns (``_NAT`` where unparseable), cached across blocks.

        Only spellings parsed without an inferred format are cached (those do not depend on
        the block). With Arrow text the lookup runs in Arrow (``index_in``), so the strings of
        a block whose times were all seen before never become Python objects.
        """
        if isinstance(uniques, pd.Series) or self.time_format is not None or not hasattr(uniques, "to_pandas"):
            t, _ = _parse_times(uniques_series(uniques), naive_tz=self.naive_tz, time_format=self.time_format)
            return t.view("int64")
        import pyarrow as pa
        import pyarrow.compute as pc

        out = np.empty(len(uniques), dtype=np.int64)
        if self._tcache is not None:
            pos = pc.fill_null(pc.index_in(uniques, value_set=self._tcache), -1).to_numpy()
        else:
            pos = np.full(len(uniques), -1)
        hit = pos >= 0
        if hit.any():
            if len(self._tcache_ns) > 1:
                self._tcache_ns = [np.concatenate(self._tcache_ns)]
            out[hit] = self._tcache_ns[0][pos[hit]]
        miss = np.flatnonzero(~hit)
        if len(miss):
            text = uniques.take(pa.array(miss))
            t, inferred = _parse_times(text.to_pandas(), naive_tz=self.naive_tz, time_format=None)
            t = t.view("int64")
            out[miss] = t
            keep = ~inferred
            size = 0 if self._tcache is None else len(self._tcache)
            if keep.any() and size < _TIME_CACHE_MAX:
                new = text.filter(pa.array(keep))
                self._tcache = new if self._tcache is None else pa.concat_arrays([self._tcache, new])
                self._tcache_ns.append(t[keep])
        return out

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
    def add_records(self, rows: pd.DataFrame, bad: list, *, what: str) -> None:
        """Add parsed rows, and quarantine the records that were not ``what`` (numbered after them)."""
        self.add(rows)
        if bad:
            start = len(rows) + 1
            self.quarantine(pd.DataFrame({"row": np.arange(start, start + len(bad)), "value": bad}),
                            "malformed_record", f"not {what}")

    def finish(self) -> tuple[xr.DataTree, IngestReport]:
        """Resolve duplicates, assemble the cube, and reconcile the report."""
        acc = self._acc.columns()
        sites = self._site_rows or [(np.nan, np.nan, None)]
        tables = Tables(
            sensors=np.asarray(self._sensors.values(), dtype=object),
            times=np.asarray(self._times.values(), dtype="int64"),
            variables=self._var_names,
            site_lat=np.array([s[0] for s in sites], dtype="float64"),
            site_lon=np.array([s[1] for s in sites], dtype="float64"),
            site_zone=np.array([s[2] for s in sites], dtype=object),
        )
        keep, conflict, merged = dedupe(acc, tables)
        if len(conflict):
            table = conflict_table(acc, conflict, tables)
            self._quarantined.append(_raw_table(table, "duplicate_conflict", table["detail"]))
            self.counts["duplicate_conflict"] += len(conflict)
        n_accepted = len(acc["row"]) - len(conflict)
        flagged = self._acc.flagged()
        if keep is not None:
            flagged = flagged[keep[flagged]]
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
                    "sensor": pd.Series(tables.sensors[acc["sensor"][flagged]], dtype="string"),
                    "time": pd.Series(tables.times[acc["time"][flagged]].astype("datetime64[ns]"), dtype="datetime64[ns]"),
                    "variable": pd.Series(np.asarray(self._var_names, dtype=object)[acc["var"][flagged]], dtype="string"),
                }
            ),
        )
        tree = build_tree(acc, tables, keep, first=self._acc.first, history=f"workbench.io: {n_accepted} records read from {self.format} source")
        return tree, report

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


def sensor_join(parts: list[pd.Series], *, sep: str = ":") -> pd.Series:
    """Join several id columns into one sensor id (missing parts make the id missing)."""
    out = _as_string(parts[0])
    for p in parts[1:]:
        out = out + sep + _as_string(p)
    return out


