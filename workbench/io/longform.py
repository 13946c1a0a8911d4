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
import hashlib
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench.io._build import Collector, _as_string, _Col, _truthy, col_from_arrow, to_float
from workbench.io._columns import uniques_series
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


def _pieces(stream: Any, block_size: int) -> Iterator[bytes]:
    """Cut a byte stream into pieces of about ``block_size`` bytes, each ending at a newline
    outside double quotes (so no record is split; a quoted field may hold newlines)."""
    buf = b""
    while True:
        chunk = stream.read(block_size)
        if not chunk:
            if buf:
                yield buf
            return
        buf = buf + chunk if buf else chunk
        cut = buf.rfind(b"\n")
        quotes = buf.count(b'"', 0, cut) if cut >= 0 else 0
        while cut >= 0 and quotes % 2:  # inside a quoted field: step back a line
            prev = buf.rfind(b"\n", 0, cut)
            quotes -= buf.count(b'"', prev + 1, cut)
            cut = prev
        if cut < 0:
            continue
        yield buf[: cut + 1]
        buf = buf[cut + 1 :]


def _csv_tables(
    path: Path, *, encoding: str, block_size: int, delimiter: str, direct: bool, hasher: Any
) -> Iterator[tuple[Any, list[tuple[int, str]], int]]:
    """Arrow tables of the file, one per piece of about ``block_size`` bytes, every column as
    text, each with its malformed records ``(number within the piece, text)`` and its size in bytes.

    The file is cut into pieces here, not by Arrow's streaming reader, because that one reads
    the whole input ahead: memory then grows with the file. ``direct``: the bytes go to Arrow
    as they are (each piece checked to be UTF-8 first, else :class:`_NotUTF8`); otherwise they
    are re-encoded on the way
    (:class:`_Recode`), undecodable bytes replaced. Every byte read is fed to ``hasher``.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _header(path, encoding=encoding, delimiter=delimiter)
    parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=lambda r: (bad.append((r.number, r.text)), "skip")[1])
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True,
                                   null_values=[""], check_utf8=not direct)
    with open(path, "rb") as raw:
        if direct:
            stream: Any = _Hashed(raw, hasher)
        else:
            head = raw.read(3)
            if head.startswith(codecs.BOM_UTF8):
                hasher.update(head)
            else:
                raw.seek(0)
            stream = io.BufferedReader(_Recode(_Hashed(raw, hasher), encoding), buffer_size=1 << 20)
        first = True
        for piece in _pieces(stream, block_size):
            bad: list[tuple[int, str]] = []
            skip = 1 if first else 0  # numbers count the header line when it is in the piece
            read = pacsv.ReadOptions(use_threads=False, column_names=header, skip_rows=skip, block_size=max(len(piece), 1))
            first = False
            if not piece.strip(b"\r\n\t "):
                continue
            if direct and not piece.isascii():  # pieces end at a newline: no character is cut
                try:
                    piece.decode("utf-8")
                except UnicodeDecodeError:
                    raise _NotUTF8 from None
            try:
                table = pacsv.read_csv(pa.py_buffer(piece), read_options=read, parse_options=parse, convert_options=convert)
            except pa.ArrowInvalid as exc:
                if "Empty CSV" in str(exc):
                    continue
                raise
            yield table, [(n - skip, text) for n, text in bad], len(piece)


class _Hashed:
    """A binary file whose bytes are fed to a hash as they are read."""

    def __init__(self, raw: Any, hasher: Any) -> None:
        self._raw, self._hasher = raw, hasher

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._hasher.update(data)
        return data


def _block(collector: Collector, batch: Any, cols: Mapping[str, Any], rows: np.ndarray) -> None:
    """Hand one Arrow batch to the collector column-wise (dictionary-encoded, values cast in C)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def column(src: Any) -> Any:
        if isinstance(src, str):
            return batch.column(src)
        parts = [pc.cast(batch.column(c), pa.string()) for c in src]
        return pc.binary_join_element_wise(*parts, ":")

    enc = {key: col_from_arrow(column(src)) for key, src in cols.items() if key not in ("value", "flag", "wkt")}
    if "wkt" in cols:
        w = col_from_arrow(column(cols["wkt"]))
        xy = uniques_series(w.uniques).astype("string").str.extract(
            r"POINT\s*(?:Z\s*)?\(\s*([-+0-9.eE]+)[\s,]+([-+0-9.eE]+)", expand=True
        )
        for key, part in (("lon", 0), ("lat", 1)):
            enc.setdefault(key, _Col(w.codes, xy[part].to_numpy(dtype=object, na_value=None)))
    raw = column(cols["value"])
    collector.add_block(
        row=rows,
        value=_floats(raw),
        raw_value=lambda idx: _as_string(raw.take(pa.array(idx)).to_pandas()).to_numpy(dtype=object, na_value=pd.NA),
        flag=_truthy_arrow(column(cols["flag"])) if "flag" in cols else None,
        **enc,
    )


def _floats(arr: Any) -> np.ndarray:
    """Arrow values -> float64, NaN where not a finite number (cast in C; pandas for dirty blocks)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:
            out = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return to_float(arr.to_pandas())
        out = np.array(out, dtype="float64")
        out[~np.isfinite(out)] = np.nan
        return out
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        out = np.array(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")
        out[~np.isfinite(out)] = np.nan
        return out
    return to_float(arr.to_pandas())


def _truthy_arrow(arr: Any) -> np.ndarray:
    col = col_from_arrow(arr)
    per = _truthy(uniques_series(col.uniques)) if len(col.uniques) else np.zeros(0, bool)
    return np.append(per, False)[col.codes]


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
    block_size: int = 4 << 20,
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
    columns = _parquet(path).schema_arrow.names if is_parquet else _header(path, encoding=encoding, delimiter=delimiter)
    cols, preset_units = _resolve_mapping(list(columns), mapping, str(path))

    def collector() -> Collector:
        return Collector(source=str(path), sha256="", format="long-parquet" if is_parquet else "long-csv",
                         variables=variables, units={**preset_units, **(units or {})}, naive_tz=naive_tz,
                         time_format=time_format)

    if is_parquet:
        c = collector()
        c.sha256 = file_sha256(path)
        _read_parquet(path, cols, c)
        return c.finish()
    with open(path, "rb") as fh:
        direct = codecs.lookup(encoding).name == "utf-8" and not fh.read(3).startswith(codecs.BOM_UTF8)
    c = collector()
    try:
        _read_csv(path, cols, c, encoding=encoding, delimiter=delimiter, block_size=block_size, direct=direct)
    except _NotUTF8:  # found while reading: start again, re-encoding (undecodable bytes replaced)
        c = collector()
        _read_csv(path, cols, c, encoding=encoding, delimiter=delimiter, block_size=block_size, direct=False)
    return c.finish()


class _NotUTF8(Exception):
    """A file read directly turned out not to be UTF-8."""


def _parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise ReadError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc}).") from None


def _read_parquet(path: Path, cols: Mapping[str, Any], collector: Collector) -> None:
    pf = _parquet(path)
    collector.reserve(pf.metadata.num_rows)
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=1_000_000):
            _block(collector, batch, cols, np.arange(row + 1, row + 1 + batch.num_rows, dtype=np.int64))
            row += batch.num_rows
    except ReadError:
        raise
    except Exception as exc:  # the file itself is broken
        raise ReadError(f"{path}: cannot be read as parquet after data row {row} ({type(exc).__name__}: {exc}).") from None


def _read_csv(path: Path, cols: Mapping[str, Any], collector: Collector, *, encoding: str, delimiter: str,
              block_size: int, direct: bool) -> None:
    """Stream the CSV into ``collector``; its SHA-256 is computed from the same reads."""
    hasher = hashlib.sha256()
    bad: list[tuple[int, str]] = []
    row = 0  # records numbered as in the file: 1 = the first record after the header line
    size, done = path.stat().st_size, 0
    tables = _csv_tables(path, encoding=encoding, block_size=block_size, delimiter=delimiter, direct=direct, hasher=hasher)
    try:
        for table, broken, nbytes in tables:
            done += nbytes
            if done and row == 0:  # size the accepted store once, from the first piece's bytes per record
                collector.reserve(int(1.25 * size / done * (table.num_rows + len(broken))) + 1024)
            records = np.arange(1, table.num_rows + len(broken) + 1, dtype=np.int64)
            numbers = row + (np.delete(records, [n - 1 for n, _ in broken]) if broken else records)
            bad += [(row + n, text) for n, text in broken]
            at = 0
            for batch in table.to_batches():
                _block(collector, batch, cols, numbers[at : at + batch.num_rows])
                at += batch.num_rows
            row += len(records)
    except (ReadError, _NotUTF8):
        raise
    except Exception as exc:  # pyarrow.lib.ArrowInvalid and friends: the file itself is broken
        raise ReadError(f"{path}: cannot be read as csv after data row {row} ({type(exc).__name__}: {exc}).") from None
    if bad:
        collector.quarantine(
            pd.DataFrame({"row": [n for n, _ in bad], "value": [t for _, t in bad]}),
            "malformed_record",
            "wrong number of fields",
        )
    collector.sha256 = hasher.hexdigest()


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
            sensors = np.asarray(ds["sensor"].values, dtype=object)  # boundary: to_long is a sink (small coordinate)
            frame = pd.DataFrame(
                {
                    "sensor": pd.array(sensors[s_idx], dtype="string"),
                    "time": np.asarray(ds["time"].values)[t_idx],  # boundary: to_long is a sink (time index)
                    "variable": pd.array(np.full(len(s_idx), str(name), dtype=object), dtype="string"),
                    "value": values[s_idx, t_idx],
                    "unit": pd.array(np.full(len(s_idx), str(da.attrs.get("units", "")), dtype=object), dtype="string"),
                }
            )
            for c in ("lat", "lon"):
                frame[c] = np.asarray(ds[c].values, dtype="float64")[s_idx] if c in ds.coords else np.nan  # boundary: reader on in-memory input
            zone = np.asarray(ds["zone"].values, dtype=object)[s_idx] if "zone" in ds.coords else np.full(len(s_idx), "", object)  # boundary: to_long is a sink (small coordinate)
            frame["zone"] = pd.array(zone, dtype="string")
            frames.append(frame)
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype="string") for c in ("sensor", "time", "variable", "value", "unit", "lat", "lon", "zone")})
    return pd.concat(frames, ignore_index=True)
