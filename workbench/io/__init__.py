"""Sources and sinks: readers of the feeds cities publish, the cube store, the catalog.

Names are imported lazily (a module ``__getattr__``), so ``import workbench.io`` stays cheap
and each submodule loads only when one of its names is used.

Examples
--------
>>> from workbench.io import read_observations  # doctest: +SKIP
>>> cube, report = read_observations("datasets/fixtures/longform.csv")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: public name -> module that defines it
_LAZY = {
    "write_city": "workbench.io.store",
    "read_city": "workbench.io.store",
    "open_city": "workbench.io.catalog",
    "read_observations": "workbench.io.observations",
    "ReadError": "workbench.io.report",
    "IngestReport": "workbench.io.report",
    "REASONS": "workbench.io.report",
    "to_long": "workbench.io.longform",
    "read_long": "workbench.io.longform",
    "read_sensorthings": "workbench.io.sensorthings",
    "fetch_sensorthings": "workbench.io.sensorthings",
    "to_sensorthings": "workbench.io.sensorthings",
    "read_ngsild": "workbench.io.ngsild",
    "to_ngsild": "workbench.io.ngsild",
    "read_cf_timeseries": "workbench.io.cfnetcdf",
    "to_cf_timeseries": "workbench.io.cfnetcdf",
    "read_open311": "workbench.io.open311",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'workbench.io' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
