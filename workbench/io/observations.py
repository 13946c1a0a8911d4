"""One entry point for every feed: :func:`read_observations` detects the format and reads it.

Formats and how they are detected (``format=`` overrides):

============== ====================================================================
``long``       ``.csv``, ``.tsv``, ``.txt``, ``.parquet``/``.pq`` (:mod:`.longform`)
``sensorthings`` ``http(s)://`` URLs; JSON with ``@iot.`` keys, ``Datastreams``,
               ``dataArray`` or ``Observations/`` (:mod:`.sensorthings`)
``ngsi-ld``    ``.jsonld``; JSON with ``urn:ngsi-ld``, ``"Property"``, ``@context``
               ``subscriptionId``, ``metadata``, or ``id`` + ``type`` (:mod:`.ngsild`)
``cf-netcdf``  ``.nc``, ``.nc4``, ``.cdf``, ``.cdl`` (:mod:`.cfnetcdf`)
``open311``    ``.xml``; JSON with ``service_request_id`` (:mod:`.open311`)
============== ====================================================================

Examples
--------
>>> cube, report = read_observations("datasets/fixtures/longform.csv")  # doctest: +SKIP
>>> report.n_in == report.n_accepted + report.n_quarantined  # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from workbench.io.report import IngestReport, ReadError

__all__ = ["FORMATS", "detect_format", "read_observations"]

FORMATS = ("long", "sensorthings", "ngsi-ld", "cf-netcdf", "open311")
_SUFFIX = {
    ".csv": "long", ".tsv": "long", ".txt": "long", ".parquet": "long", ".pq": "long",
    ".nc": "cf-netcdf", ".nc4": "cf-netcdf", ".cdf": "cf-netcdf", ".cdl": "cf-netcdf",
    ".xml": "open311", ".jsonld": "ngsi-ld",
}


def detect_format(source: str | Path) -> str:
    """The format name of ``source``, from its scheme, suffix or first 64 KiB."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        return "sensorthings"
    path = Path(source)
    if path.suffix.lower() in _SUFFIX:
        return _SUFFIX[path.suffix.lower()]
    if not path.is_file():
        raise ReadError(f"{path}: no such file.")
    with open(path, "rb") as fh:
        head = fh.read(65536).decode("utf-8", errors="replace")
    if head.startswith("CDF") or head.startswith("\x89HDF") or head[1:4] == "HDF":
        return "cf-netcdf"
    if "service_request_id" in head or "requested_datetime" in head:
        return "open311"
    if "@iot." in head or '"Datastreams"' in head or '"dataArray"' in head or '"Observations/' in head:
        return "sensorthings"
    ngsi_v2 = '"metadata"' in head or ('"id"' in head and '"type"' in head)
    if "urn:ngsi-ld" in head or '"Property"' in head or "@context" in head or "subscriptionId" in head or ngsi_v2:
        return "ngsi-ld"
    if head.lstrip().startswith(("{", "[")):
        raise ReadError(f"{path}: JSON, but neither SensorThings, NGSI-LD nor Open311 could be recognised; pass format=.")
    return "long"


def read_observations(
    source: str | Path | Mapping[str, Any] | list[Any],
    *,
    format: str | None = None,
    mapping: Mapping[str, Any] | str | None = None,
    **kw: Any,
) -> tuple[xr.DataTree, IngestReport]:
    """Read any supported feed into the workbench cube, with a report of what was kept.

    Parameters
    ----------
    source
        Path, URL (SensorThings), or an already parsed JSON payload (then ``format`` is
        required).
    format
        One of :data:`FORMATS`; detected when ``None``.
    mapping
        ``long``: column mapping or preset name (see :mod:`workbench.io.longform`); other
        formats: feed label -> registry variable (the ``variables=`` of each reader).
    **kw
        Passed to the reader (``units``, ``naive_tz``, ``zones`` for Open311, ...).

    Returns
    -------
    (DataTree, IngestReport)
        The cube (one node per system, ``(sensor, time)``, canonical units) and the report.

    Raises
    ------
    ReadError
        When the source cannot be read at all.
    """
    if format is None:
        if not isinstance(source, (str, Path)):
            raise ReadError("read_observations: pass format= for an in-memory payload.")
        format = detect_format(source)
    if format not in FORMATS:
        raise ReadError(f"{source}: unknown format {format!r}; known: {', '.join(FORMATS)}.")
    if format == "long":
        from workbench.io.longform import read_long

        return read_long(source, mapping=mapping, **kw)  # type: ignore[arg-type]
    if mapping is not None:
        kw["variables"] = mapping
    if format == "sensorthings":
        from workbench.io.sensorthings import read_sensorthings

        return read_sensorthings(source, **kw)
    if format == "ngsi-ld":
        from workbench.io.ngsild import read_ngsild

        return read_ngsild(source, **kw)
    if format == "cf-netcdf":
        from workbench.io.cfnetcdf import read_cf_timeseries

        return read_cf_timeseries(source, **kw)  # type: ignore[arg-type]
    from workbench.io.open311 import read_open311

    kw.pop("variables", None)
    return read_open311(source, **kw)  # type: ignore[arg-type]
