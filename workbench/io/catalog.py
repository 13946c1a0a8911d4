"""The dataset catalog (``datasets/catalog.yml``) and :func:`open_city`, the one loader.

Reference cities are generated on first use and cached (Zarr) in ``datasets/cache/``;
remote stores are fetched once with pooch and checked against their sha256.
Set ``WORKBENCH_DATASETS`` to use another datasets folder, ``WORKBENCH_CACHE`` for the cache.

Examples
--------
>>> import workbench
>>> city = workbench.open_city("reference")  # doctest: +SKIP
>>> sorted(list_datasets())[:2]  # doctest: +SKIP
['month-1000', 'reference']
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import xarray as xr
import yaml

from workbench.io.store import read_city, write_city

__all__ = ["open_city", "list_datasets", "load_catalog", "CatalogError", "datasets_dir", "cache_dir"]

_KINDS = {"synth", "store", "remote", "feed"}


class CatalogError(ValueError):
    """A catalog entry is unknown, malformed, or its data does not match its hash."""


def datasets_dir() -> Path:
    """The datasets folder: ``$WORKBENCH_DATASETS`` or the project's ``datasets/``."""
    env = os.environ.get("WORKBENCH_DATASETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "datasets"


def cache_dir() -> Path:
    """Where generated and fetched cities are cached: ``$WORKBENCH_CACHE`` or ``datasets/cache``."""
    env = os.environ.get("WORKBENCH_CACHE")
    return Path(env) if env else datasets_dir() / "cache"


def load_catalog(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Read and check the catalog; returns ``{name: entry}``."""
    path = Path(path) if path else datasets_dir() / "catalog.yml"
    if not path.exists():
        raise CatalogError(f"{path}: no catalog file (set WORKBENCH_DATASETS to the folder holding catalog.yml).")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML ({exc}).") from None
    entries = data.get("datasets")
    if not isinstance(entries, dict):
        raise CatalogError(f"{path}: expected a top-level 'datasets' mapping.")
    for name, e in entries.items():
        kind = (e or {}).get("kind")
        if kind not in _KINDS:
            raise CatalogError(f"{path}: dataset '{name}' has kind {kind!r}; expected one of {', '.join(sorted(_KINDS))}.")
        if kind == "remote" and not (e.get("url") and e.get("sha256")):
            raise CatalogError(f"{path}: remote dataset '{name}' needs both 'url' and 'sha256'.")
        if kind in ("store", "feed") and not e.get("path"):
            raise CatalogError(f"{path}: dataset '{name}' needs a 'path'.")
    return entries


def list_datasets(catalog: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name: description}`` of every catalogued dataset."""
    return {k: v.get("description", "") for k, v in load_catalog(catalog).items()}


def _entry(name: str, catalog) -> dict[str, Any]:
    entries = load_catalog(catalog)
    if name not in entries:
        raise CatalogError(f"unknown dataset '{name}'; the catalog lists: {', '.join(entries)}.")
    return entries[name]


def open_city(name: str = "reference", *, catalog: str | os.PathLike | None = None, progress: bool = False) -> xr.DataTree:
    """Open a catalogued city, generating or fetching it on first use.

    Parameters
    ----------
    name
        A dataset of ``datasets/catalog.yml`` (``"reference"`` by default).
    catalog
        Another catalog file.
    progress
        Show a progress bar while a reference city is generated.
    """
    e = _entry(name, catalog)
    kind = e["kind"]
    base = Path(catalog).parent if catalog else datasets_dir()
    if kind == "synth":
        from workbench.synth import SYNTH_VERSION, make_city  # the one place io builds cities

        params = dict(e.get("params") or {})
        key = json.dumps([SYNTH_VERSION, params], sort_keys=True, default=str)
        tag = hashlib.sha256(key.encode()).hexdigest()[:10]
        path = cache_dir() / f"{name}-{tag}.zarr"
        if not path.exists():
            write_city(make_city(**params), path, progress=progress)
        return read_city(path)
    if kind == "store":
        return read_city(base / e["path"])
    if kind == "remote":
        return read_city(_fetch(name, e))
    raise CatalogError(f"dataset '{name}' is a raw feed; read it with workbench.io.read_observations.")


def _fetch(name: str, e: dict[str, Any]) -> Path:
    import pooch

    url, expected = e["url"], str(e["sha256"]).lower()
    fname = e.get("filename") or Path(url.split("?")[0]).name
    try:
        got = pooch.retrieve(url, known_hash=f"sha256:{expected}", fname=fname, path=cache_dir() / "remote", progressbar=False)
    except ValueError as exc:
        if "hash" in str(exc).lower():
            raise CatalogError(f"dataset '{name}': the file fetched from {url} does not match the catalog's sha256 {expected}.") from None
        raise
    except Exception as exc:  # requests/pooch network errors
        raise CatalogError(f"dataset '{name}': could not fetch {url} ({type(exc).__name__}).") from None
    return Path(got)
