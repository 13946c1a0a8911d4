"""The cube store: a city as Zarr v3 (one group per node) or NetCDF, written atomically.

A write goes to a temporary sibling and is renamed into place only when complete, so a
crashed run never leaves a half-written store that :func:`read_city` accepts.

Examples
--------
>>> from workbench.synth import make_city
>>> from workbench.io import write_city, read_city
>>> city = make_city(zones=2, sensors_per_system=2, days=1)
>>> path = write_city(city, tmp_path / "city.zarr")  # doctest: +SKIP
>>> read_city(path)["energy"].sizes  # doctest: +SKIP
Frozen({'sensor': 2, 'time': 96})
"""

from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from workbench import registry
from workbench._options import scheduler_context

__all__ = ["write_city", "read_city", "store_format", "StoreError"]

#: retries of each chunk-write task on a dask.distributed cluster
IO_RETRIES = 2

_ZARR = (".zarr",)
_NETCDF = (".nc", ".nc4", ".netcdf", ".h5")


class StoreError(ValueError):
    """A path is not a readable city store."""


def store_format(path: str | os.PathLike) -> str:
    """``"zarr"`` or ``"netcdf"`` from the path's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in _ZARR:
        return "zarr"
    if suffix in _NETCDF:
        return "netcdf"
    raise StoreError(f"{path}: unknown store type; expected a name ending in .zarr or .nc.")


def _retry_io(fn, *, tries: int = 3):
    for attempt in range(tries):
        try:
            return fn()
        except OSError:
            if attempt == tries - 1:
                raise


def write_city(city: xr.DataTree, path: str | os.PathLike, *, progress: bool | None = None) -> Path:
    """Write ``city`` to ``path`` (Zarr v3 for ``.zarr``, NetCDF4 for ``.nc``), atomically.

    Computes the lazy data chunk by chunk (one boundary: this is a sink) on the scheduler
    chosen by ``workbench.set_options(scheduler=...)`` (or an enclosing
    ``scheduler_context``). ``progress=None`` follows the ``progress`` option. Returns the path.
    """
    path = Path(path)
    fmt = store_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    pool = None
    try:
        with scheduler_context(progress=progress, desc=f"writing {path.name}") as sched:
            if sched == "threads":
                # an own thread pool, drained before the clean-up below: when one chunk fails,
                # dask raises while other threads are still writing chunks into ``tmp``
                pool = ThreadPoolExecutor(dask.config.get("num_workers", None) or os.cpu_count() or 1)
            if fmt == "zarr":
                # Consolidated metadata is not part of the Zarr v3 spec, so the store does
                # without it. The chunk writes are I/O tasks: on a cluster they get `retries`
                # (a flaky disk or a lost worker costs a retry, not the run).
                with dask.annotate(retries=IO_RETRIES):
                    pending = city.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False, compute=False,
                                           encoding=_zarr_encoding(city))
                # boundary: a sink; zarr keeps the dask chunks. Runs on the current scheduler.
                dask.compute(pending, **({"pool": pool} if pool is not None else {}))  # boundary: a sink
            else:
                city.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
        old = None
        if path.exists():
            old = path.with_name(f"{path.name}.tmp-old-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            _remove(old)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        if tmp.exists():
            _remove(tmp)
    return path


def series_codec(itemsize: int):
    """The Zarr codec of a stored sensor series (Blosc LZ4, byte shuffle)."""
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=itemsize)


def _zarr_encoding(city: xr.DataTree) -> dict:
    """Blosc LZ4 with byte shuffle for every numeric ``(sensor, time)`` variable.

    Sensor series are noisy floats: zarr's default (zstd, no shuffle) saved 6 % of a
    variable and was the slowest part of reading it; byte-shuffled LZ4 saves 13 % and
    decodes ~1.7x faster (one 1,429-sensor x 1-year variable: 0.21 s vs 0.37 s, docs/scale.md
    rule 7). Values are unchanged (lossless).
    """
    out = {}
    for node in city.subtree:
        enc = {name: {"compressors": [series_codec(v.dtype.itemsize)]}
               for name, v in node.data_vars.items()
               if v.dims == ("sensor", "time") and v.dtype.kind in "fiu"}
        if enc:
            out[node.path] = enc
    return out


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def read_city(path: str | os.PathLike, *, chunks: dict | str | None = "store") -> xr.DataTree:
    """Open a city store lazily.

    Parameters
    ----------
    chunks
        ``"store"`` (default) keeps the chunks the store was written with, as dask arrays;
        ``None`` loads numpy-backed arrays on access; a dict is passed to xarray.
    """
    path = Path(path)
    fmt = store_format(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such city store.")
    kw = {} if chunks is None else {"chunks": {} if chunks == "store" else chunks}
    try:
        if fmt == "zarr":
            tree = _retry_io(lambda: xr.open_datatree(path, engine="zarr", consolidated=False, **kw))
        else:
            tree = _retry_io(lambda: xr.open_datatree(path, engine="h5netcdf", **kw))
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"{path}: cannot be opened as a {fmt} city store ({type(exc).__name__}: {exc}).") from None
    systems = [name for name in tree.children if name in registry.SYSTEMS]
    if not systems:
        raise StoreError(f"{path}: holds no system node (expected one of {', '.join(registry.SYSTEMS)}).")
    for name in systems:
        ds = tree[name]
        if ds.data_vars and ("sensor" not in ds.dims or "time" not in ds.dims):
            raise StoreError(f"{path}: node /{name} lacks the dims (sensor, time).")
    tree = _canonical_order(tree)
    if fmt == "zarr" and chunks == "store":
        tree = _direct_reads(tree, path)
    return _load_small_coords(tree)


def _direct_reads(tree: xr.DataTree, path: Path) -> xr.DataTree:
    """The systems' series read by :mod:`workbench.io._direct` (decoded straight into the
    result) where the store's layout allows it and xarray would not transform the values."""
    from workbench.io._direct import direct_array

    nodes = {node.path: node.to_dataset(inherit=False) for node in tree.subtree}
    for name in tree.children:
        if name not in registry.SYSTEMS:
            continue
        ds = nodes[f"/{name}"]
        for v, var in ds.data_vars.items():
            enc = var.encoding
            fill = enc.get("_FillValue", np.nan)
            if (var.ndim != 2 or var.dtype.kind != "f" or "scale_factor" in enc or "add_offset" in enc
                    or enc.get("dtype", var.dtype) != var.dtype or not (fill is None or np.isnan(fill))):
                continue
            arr = direct_array(path / name / str(v), name=f"{name}-{v}")
            if arr is not None and arr.shape == var.shape and arr.dtype == var.dtype:
                ds[v] = var.copy(deep=False, data=arr)
        nodes[f"/{name}"] = ds
    return xr.DataTree.from_dict(nodes, name=tree.name)


def _canonical_order(tree: xr.DataTree) -> xr.DataTree:
    """``tree`` with its nodes and variables in one fixed order: the systems and their
    variables in the registry's order (``make_city``'s), then the rest by name.

    Zarr v3 lists a group's members in whatever order the file system gives, which changed
    from one open to the next; everything that iterates over the tree (the state's
    variables, the anomaly table's rows, the evidence an incident cites) must not.
    """
    def rank(names, first):
        first = [n for n in first if n in names]
        return first + sorted(n for n in names if n not in first)

    def ordered(node: xr.DataTree, name: str) -> xr.Dataset:
        ds = node.to_dataset(inherit=False)
        first = registry.variables_of(name) if name in registry.SYSTEMS else []
        return ds[rank(list(ds.data_vars), first)]

    nodes = {"/": tree.to_dataset(inherit=False)}
    for name in rank(list(tree.children), registry.SYSTEMS):
        for node in tree[name].subtree:
            nodes[node.path] = ordered(node, name if node is tree[name] else "")
    return xr.DataTree.from_dict(nodes, name=tree.name)


def _load_small_coords(tree: xr.DataTree) -> xr.DataTree:
    """Load the 1-D coordinates (``lat``, ``lon``, ``zone`` along ``sensor``…) into memory,
    and give strings the object dtype a city built in memory has.

    They are small (one value per sensor or zone) and grouping by a lazy coordinate fails
    ("pass labels to UniqueGrouper", PERFORMANCE.md pitfall 4); the data stay lazy. Zarr v3
    strings come back as numpy's variable-width ``StringDType``, which pandas and
    ``astype(str)`` do not all accept: they become ``object``, as in ``make_city``.
    """
    for node in tree.subtree:
        ds = node.to_dataset()
        lazy = {name: c.compute() for name, c in ds.coords.items() if c.ndim == 1 and name not in ds.dims and c.chunks is not None}  # boundary: small 1-D coordinates
        if lazy:
            # boundary: a few bytes per sensor; the cube itself is not touched
            ds = ds.assign_coords(lazy)
        strings = [name for name, v in ds.variables.items() if v.ndim <= 1 and v.dtype.kind == "T"]
        if strings:
            # boundary: string labels (ids, zone names), one per sensor or zone
            ds = ds.assign({n: ds[n].astype(object) for n in strings if n in ds.data_vars})
            ds = ds.assign_coords({n: ds[n].astype(object) for n in strings if n in ds.coords})
        if lazy or strings:
            node.dataset = ds
    return tree
