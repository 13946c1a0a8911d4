"""Smart City Workbench: perceive, analyse and integrate a city's core systems.

The city is an :class:`xarray.DataTree` with one node per system (dims ``sensor × time``)
and the districts in ``/zones``. See ``docs/`` and the README for the tour.

Examples
--------
>>> import workbench
>>> city = workbench.open_city("reference")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = ["open_city", "set_options", "get_options", "run", "__version__"]

_LAZY = {
    "open_city": "workbench.io.catalog",
    "set_options": "workbench._options",
    "get_options": "workbench._options",
    "run": "workbench.integration.pipeline",
}


def __getattr__(name: str) -> Any:  # lazy: keep `import workbench` cheap
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
