"""Long-format observations (one row per reading) in CSV or Parquet, and the way back.

The canonical columns are ``sensor, time, variable, value, unit`` plus optional
``lat, lon, zone, flag`` and ``wkt`` (a ``POINT (lon lat)`` location). Other spellings work
through ``mapping`` (canonical name -> source column, or a list of source columns joined with
``:`` to make a sensor id), or through a named preset in :data:`MAPPINGS`, detected from the
header when ``mapping`` is not given:

- ``"aot"``: Array of Things digests ``timestamp, node_id, subsystem, sensor, parameter,
  value_raw, value_hrf`` (sensor id ``node_id:sensor``, value ``value_hrf``, times UTC);
- ``"newcastle"``: Newcastle Urban Observatory exports ``Sensor Name, Variable, Units,
  Timestamp, Value, Flagged as Suspect Reading, Location (WKT)`` (suspect readings are
  accepted and listed in :attr:`IngestReport.flagged`: flagging is perception's job);
- ``"sensorthings-csv"``: FROST's ``$resultFormat=CSV`` (``result, phenomenonTime,
  Datastream/id, Datastream/name``; no unit column: pass ``units=``).

Streaming: CSV is read with ``pyarrow.csv.open_csv`` in blocks (``block_size`` bytes, every
column as text) and Parquet with ``ParquetFile.iter_batches``; each block is validated and
only accepted readings are kept, compactly (see :mod:`workbench.io._build`). Memory is
bounded by one block plus the accepted readings, never by the text of the file. Rows with
the wrong number of fields are quarantined as ``malformed_record``; bytes that are not valid
in ``encoding`` are replaced (U+FFFD), so the row is checked, not lost.

Examples
--------
>>> cube, report = read_long("datasets/fixtures/longform.csv")  # doctest: +SKIP
>>> report.n_in == report.n_accepted + report.n_quarantined  # doctest: +SKIP
True
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.io._build import Collector
from workbench.io._source import file_sha256, open_source_error
from workbench.io.report import IngestReport, ReadError

__all__ = ["MAPPINGS", "CANONICAL", "read_long", "to_long", "detect_mapping"]

#: canonical column names of the long format
CANONICAL = ("sensor", "time", "variable", "value", "unit", "lat", "lon", "zone", "flag", "wkt")

#: named column mappings for real export shapes (plus default units where the file has none)
MAPPINGS: dict[str, dict[str, Any]] = {
    "aot": {
        "columns": {"sensor": ["node_id", "sensor"], "time": "timestamp", "variable": "parameter", "value": "value_hrf"},
        "units": {"temperature": "degC", "pressure": "hPa", "humidity": "percent"},
    },
    "newcastle": {
        "columns": {
            "sensor": "Sensor Name",
            "variable": "Variable",
            "unit": "Units",
            "time": "Timestamp",
            "value": "Value",
            "flag": "Flagged as Suspect Reading",
            "wkt": "Location (WKT)",
        },
        "units": {},
    },
    "sensorthings-csv": {
        "columns": {"sensor": "Datastream/id", "time": "phenomenonTime", "variable": "Datastream/name", "value": "result"},
        "units": {},
    },
}


def detect_mapping(columns: Sequence[str]) -> str | None:
    """The preset whose source columns are all in ``columns``, else ``None``."""
    have = set(columns)
    for name, preset in MAPPINGS.items():
        need = {c for v in preset["columns"].values() for c in ([v] if isinstance(v, str) else v)}
        if need <= have and not {"sensor", "time", "variable", "value"} <= have - need:
            return name
    return None


def _resolve_mapping(
    columns: Sequence[str], mapping: Mapping[str, Any] | str | None, source: str
) -> tuple[dict[str, Any], dict[str, str]]:
    units: dict[str, str] = {}
    if mapping is None:
        mapping = detect_mapping(columns)
    if isinstance(mapping, str):
        if mapping not in MAPPINGS:
            raise ReadError(f"{source}: unknown mapping preset {mapping!r}; known: {', '.join(MAPPINGS)}.")
        units = dict(MAPPINGS[mapping]["units"])
        mapping = MAPPINGS[mapping]["columns"]
    cols = {c: c for c in CANONICAL if c in columns}
    for key, src in (mapping or {}).items():
        if key not in CANONICAL:
            raise ReadError(f"{source}: mapping key {key!r} is not a long-format column ({', '.join(CANONICAL)}).")
        cols[key] = src
    missing = [k for k in ("sensor", "time", "variable", "value") if k not in cols]
    wanted = [c for v in cols.values() for c in ([v] if isinstance(v, str) else v)]
    absent = [c for c in wanted if c not in columns]
    if missing or absent:
        raise ReadError(
            f"{source}: not a long-format table: "
            + (f"no column for {', '.join(missing)}" if missing else f"columns {', '.join(map(repr, absent))} not found")
            + f" (header: {', '.join(map(str, columns))}); pass mapping={{'sensor': ..., 'time': ..., "
            "'variable': ..., 'value': ...}}."
        )
    return cols, units


def _rows(batch: pd.DataFrame, cols: Mapping[str, Any], first_row: int) -> pd.DataFrame:
    out = pd.DataFrame({"row": np.arange(first_row, first_row + len(batch), dtype="int64")})
    for key, src in cols.items():
        if isinstance(src, str):
            out[key] = batch[src].to_numpy()
        else:
            joined = batch[src[0]].astype("string")
            for part in src[1:]:
                joined = joined + ":" + batch[part].astype("string")
            out[key] = joined.to_numpy()
    if "wkt" in out:
        xy = pd.Series(out["wkt"]).astype("string").str.extract(
            r"POINT\s*(?:Z\s*)?\(\s*([-+0-9.eE]+)[\s,]+([-+0-9.eE]+)", expand=True
        )
        out["lon"] = out["lon"] if "lon" in out else xy[0].to_numpy()
        out["lat"] = out["lat"] if "lat" in out else xy[1].to_numpy()
        out = out.drop(columns="wkt")
    return out


class _Recode(io.RawIOBase):
    """A binary file re-encoded to UTF-8 with undecodable bytes replaced."""

    def __init__(self, raw: Any, encoding: str) -> None:
        self._raw = raw
        self._dec = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            chunk = self._raw.read(1 << 20)
            self._buf = self._dec.decode(chunk, final=not chunk).encode("utf-8")
            if not chunk:
                break
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _csv_batches(
    path: Path, *, encoding: str, block_size: int, bad: list[tuple[int | None, str]], delimiter: str
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def on_bad(row: Any) -> str:
        bad.append((row.number, row.text))
        return "skip"

    with open(path, "rb") as raw:
        head = raw.read(4)
        raw.seek(3 if head.startswith(codecs.BOM_UTF8) else 0)
        stream = io.BufferedReader(_Recode(raw, encoding), buffer_size=1 << 20)
        # every column as text: types come from the builder, not from guessing
        header = _header(path, encoding=encoding, delimiter=delimiter)
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_bad),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header}, strings_can_be_null=True, null_values=[""]
            ),
        )
        for batch in reader:
            yield batch.to_pandas()


def _header(path: Path, *, encoding: str, delimiter: str) -> list[str]:
    import csv

    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        first = fh.readline().lstrip("\ufeff")
    if not first.strip():
        raise ReadError(f"{path}: empty file, or no header line; expected a CSV header such as sensor,time,variable,value,unit.")
    return next(csv.reader([first], delimiter=delimiter))


def read_long(
    source: str | Path,
    *,
    mapping: Mapping[str, Any] | str | None = None,
    variables: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    naive_tz: str = "UTC",
    time_format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str = ",",
    block_size: int = 16 << 20,
) -> tuple[xr.DataTree, IngestReport]:
    """Read a long CSV or Parquet file of observations.

    Parameters
    ----------
    source
        Path to ``.csv`` (optionally ``.csv.gz`` is not streamed: decompress first) or
        ``.parquet``.
    mapping
        Canonical column -> source column(s), or a preset name from :data:`MAPPINGS`.
    variables, units, naive_tz, time_format
        See :class:`workbench.io._build.Collector`.
    encoding, delimiter, block_size
        CSV text encoding, field delimiter, and bytes per streamed block.

    Returns
    -------
    (DataTree, IngestReport)
    """
    path = Path(source)
    open_source_error(path)
    is_parquet = path.suffix.lower() in (".parquet", ".pq")
    fmt = "parquet" if is_parquet else "csv"
    bad: list[tuple[int | None, str]] = []
    if is_parquet:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
            raise ReadError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc}).") from None
        columns = list(pf.schema_arrow.names)
        batches: Iterator[pd.DataFrame] = (b.to_pandas() for b in pf.iter_batches(batch_size=1_000_000))
    else:
        columns = _header(path, encoding=encoding, delimiter=delimiter)
        batches = _csv_batches(path, encoding=encoding, block_size=block_size, bad=bad, delimiter=delimiter)
    cols, preset_units = _resolve_mapping(columns, mapping, str(path))
    collector = Collector(
        source=str(path),
        sha256=file_sha256(path),
        format=f"long-{fmt}",
        variables=variables,
        units={**preset_units, **(units or {})},
        naive_tz=naive_tz,
        time_format=time_format,
    )
    row = 1
    try:
        for batch in batches:
            collector.add(_rows(batch, cols, row))
            row += len(batch)
    except ReadError:
        raise
    except Exception as exc:  # pyarrow.lib.ArrowInvalid and friends: the file itself is broken
        raise ReadError(f"{path}: cannot be read as {fmt} after data row {row - 1} ({type(exc).__name__}: {exc}).") from None
    if bad:
        collector.quarantine(
            pd.DataFrame({"row": [n - 1 if n else 0 for n, _ in bad], "value": [t for _, t in bad]}),
            "malformed_record",
            "wrong number of fields",
        )
    return collector.finish()


def to_long(tree: xr.DataTree, *, dropna: bool = True) -> pd.DataFrame:
    """The cube as long rows ``sensor, time, variable, value, unit, lat, lon, zone``.

    Values are in each variable's ``units`` attribute; ``_qc`` and other non-``(sensor,
    time)`` variables are left out. The inverse of :func:`read_long` on the written table.

    Examples
    --------
    >>> cube, _ = read_long("datasets/fixtures/longform.csv")  # doctest: +SKIP
    >>> to_long(cube).columns.tolist()  # doctest: +SKIP
    ['sensor', 'time', 'variable', 'value', 'unit', 'lat', 'lon', 'zone']
    """
    frames = []
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        for name, da in ds.data_vars.items():
            if da.dims != ("sensor", "time") or str(name).endswith("_qc"):
                continue
            values = np.asarray(da.values)  # boundary: a sink writing long rows
            s_idx, t_idx = np.nonzero(~np.isnan(values)) if dropna else np.indices(values.shape).reshape(2, -1)
            sensors = np.asarray(ds["sensor"].values, dtype=object)
            frame = pd.DataFrame(
                {
                    "sensor": pd.array(sensors[s_idx], dtype="string"),
                    "time": np.asarray(ds["time"].values)[t_idx],
                    "variable": pd.array(np.full(len(s_idx), str(name), dtype=object), dtype="string"),
                    "value": values[s_idx, t_idx],
                    "unit": pd.array(np.full(len(s_idx), str(da.attrs.get("units", "")), dtype=object), dtype="string"),
                }
            )
            for c in ("lat", "lon"):
                frame[c] = np.asarray(ds[c].values, dtype="float64")[s_idx] if c in ds.coords else np.nan
            zone = np.asarray(ds["zone"].values, dtype=object)[s_idx] if "zone" in ds.coords else np.full(len(s_idx), "", object)
            frame["zone"] = pd.array(zone, dtype="string")
            frames.append(frame)
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype="string") for c in ("sensor", "time", "variable", "value", "unit", "lat", "lon", "zone")})
    return pd.concat(frames, ignore_index=True)
