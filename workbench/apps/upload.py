"""Check a feed before it is wired in: upload a file, see its ingest report and quarantine.

The file goes through :func:`workbench.io.read_observations` (any reader's format). Size
and type are checked **on the server** (the browser's checks can be bypassed): files larger
than ``WORKBENCH_MAX_UPLOAD_MB`` (set by ``workbench serve --max-upload-mb``, default 20)
or with a suffix no reader knows are refused with one sentence. The websocket message limit
of the server is set from the same number, so an oversized upload never reaches Python.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

import pandas as pd
import panel as pn
import param

from workbench.io.report import REASONS

__all__ = ["FeedUpload", "ACCEPT", "max_upload_bytes", "check_upload", "ingest_bytes", "UploadError"]

log = logging.getLogger(__name__)

#: suffixes the readers know (see workbench.io.observations)
ACCEPT = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".json", ".jsonld", ".geojson", ".nc", ".nc4", ".cdf", ".xml")
FORMATS = ("auto", "long", "sensorthings", "ngsi-ld", "cf-netcdf", "open311")
#: quarantined rows shown in the page (the report counts them all)
SHOW_ROWS = 200


class UploadError(ValueError):
    """An upload refused before it is read (too large, wrong type)."""


def max_upload_bytes() -> int:
    """The server's upload limit: ``$WORKBENCH_MAX_UPLOAD_MB`` (default 20) in bytes."""
    return int(float(os.environ.get("WORKBENCH_MAX_UPLOAD_MB", "20")) * 1024 * 1024)


def check_upload(filename: str, size: int, *, limit: int | None = None) -> str:
    """The safe base name of an upload, or :class:`UploadError` naming what is wrong."""
    limit = max_upload_bytes() if limit is None else limit
    name = Path(str(filename or "")).name
    if not name:
        raise UploadError("the upload has no file name; choose a file to check.")
    if Path(name).suffix.lower() not in ACCEPT:
        raise UploadError(f"{name}: a {Path(name).suffix or 'suffix-less'} file is not a feed format; expected one of {', '.join(ACCEPT)}.")
    if size > limit:
        raise UploadError(f"{name}: {size / 2**20:.1f} MB is over the server's upload limit of {limit / 2**20:.0f} MB.")
    return name


def ingest_bytes(content: bytes, filename: str, *, format: str | None = None, limit: int | None = None):
    """Write an upload to a private temporary folder and read it: ``(cube, report)``."""
    from workbench.io import read_observations

    name = check_upload(filename, len(content), limit=limit)
    with tempfile.TemporaryDirectory(prefix="workbench-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        cube, report = read_observations(path, format=None if format in (None, "auto") else format)
        cube = cube.load()  # boundary: the temporary file goes away with this block
    report.source = name
    return cube, report


def _report_markdown(report) -> str:
    lines = [
        f"### Ingest report — `{report.source}`",
        f"format **{report.format}** · sha256 `{report.sha256[:16]}…`" if report.sha256 else f"format **{report.format}**",
        "",
        "| records in | accepted | quarantined | duplicates merged | flagged by source |",
        "|---:|---:|---:|---:|---:|",
        f"| {report.n_in} | {report.n_accepted} | {report.n_quarantined} | {report.n_duplicates_merged} | {report.n_flagged_by_source} |",
    ]
    reasons = {r: n for r, n in report.reasons.items() if n}
    if reasons:
        lines += ["", "| reason | records | meaning |", "|---|---:|---|"]
        lines += [f"| `{r}` | {n} | {REASONS[r]} |" for r, n in reasons.items()]
    return "\n".join(lines)


def _cube_table(cube) -> pd.DataFrame:
    rows = []
    for node in cube.subtree:
        ds = node.to_dataset()
        for var in ds.data_vars:
            if "sensor" in ds[var].dims and not str(var).endswith("_qc"):
                t = ds.indexes.get("time")
                rows.append({"system": node.name, "variable": str(var), "units": ds[var].attrs.get("units", ""),
                             "sensors": int(ds.sizes["sensor"]),
                             "start": t[0] if t is not None and len(t) else None,
                             "end": t[-1] if t is not None and len(t) else None,
                             "completeness": float(ds[var].notnull().mean())})
    return pd.DataFrame(rows)


class FeedUpload(pn.viewable.Viewer):
    """A file input, a format choice, and the ingest report of the last upload."""

    limit = param.Integer(default=None, allow_None=True, doc="Upload limit in bytes (default: the server's).")

    def __init__(self, **params):
        super().__init__(**params)
        limit = self.limit or max_upload_bytes()
        self.file = pn.widgets.FileInput(accept=",".join(ACCEPT), multiple=False, label="Feed file")
        self.format = pn.widgets.Select(label="Format", options=list(FORMATS), value="auto", width=160)
        self.help = pn.pane.Markdown(
            f"Upload a feed (long CSV/Parquet, SensorThings or NGSI-LD JSON, CF NetCDF, Open311) of at most "
            f"**{limit / 2**20:.0f} MB** to check it before it is wired in: nothing is stored.")
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.report = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.cube = pn.pane.DataFrame(None, index=False, sizing_mode="stretch_width", visible=False)
        self.quarantine = pn.pane.DataFrame(None, index=False, sizing_mode="stretch_width", max_rows=SHOW_ROWS,
                                            visible=False)
        self.result = pn.Column(self.report, self.cube, self.quarantine, sizing_mode="stretch_width")
        self.file.param.watch(self._on_file, "value")
        self.format.param.watch(self._on_file, "value")
        self.last = None  # (cube, report) of the last good upload

    async def _on_file(self, event=None):
        content, filename = self.file.value, self.file.filename
        if not content:
            return
        self.alert.visible = False
        self.result.loading = True
        try:
            cube, report = await asyncio.to_thread(ingest_bytes, content, filename, format=self.format.value,
                                                   limit=self.limit)
        except Exception as exc:  # the app's boundary: one readable sentence
            if not isinstance(exc, (UploadError, ValueError, OSError)):
                log.exception("ingest of %s failed", filename)
            self.alert.object = f"**The feed could not be read.** {exc}"
            self.alert.visible = True
            self.report.object, self.cube.visible, self.quarantine.visible = "", False, False
            self.last = None
            return
        finally:
            self.result.loading = False
        self.last = (cube, report)
        self.report.object = _report_markdown(report)
        self.cube.object, self.cube.visible = _cube_table(cube), True
        q = report.quarantined
        self.quarantine.object = q.head(SHOW_ROWS) if len(q) else None
        self.quarantine.visible = bool(len(q))

    def __panel__(self):
        return pn.Column(self.help, pn.Row(self.file, self.format), self.alert, self.result,
                         sizing_mode="stretch_width")
