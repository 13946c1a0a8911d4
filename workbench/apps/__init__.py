"""Panel components of the workbench: the only package that imports panel and HoloViews.

``CityState`` holds what every view shares (dataset, system, variable, zone, time
window); ``PerceptionView``, ``AnalysisView`` and ``IntegrationView`` are
:class:`panel.viewable.Viewer` classes over it, served from the notebooks by
``workbench serve``; :mod:`workbench.apps.plots` has the plot builders the notebooks use.
Names load lazily so ``import workbench.apps`` stays cheap.

Examples
--------
>>> from workbench.apps import CityState, PerceptionView, AnalysisView
>>> state = CityState(system="water")  # doctest: +SKIP
>>> pn.Tabs(PerceptionView(state=state), AnalysisView(state=state))  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "CityState": "workbench.apps.state",
    "CityView": "workbench.apps._base",
    "PerceptionView": "workbench.apps.perception",
    "AnalysisView": "workbench.apps.analysis",
    "IntegrationView": "workbench.apps.integration",
    "FeedUpload": "workbench.apps.upload",
    "plots": "workbench.apps.plots",
    "page": "workbench.apps.layout",
    "data": "workbench.apps.data",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'workbench.apps' has no attribute {name!r}")
    module = import_module(_LAZY[name])
    value = module if _LAZY[name].endswith(f".{name}") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
