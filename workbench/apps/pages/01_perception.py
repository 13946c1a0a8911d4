"""Fallback page served by ``workbench serve`` when ``notebooks/01_perception.ipynb`` is absent."""

import panel as pn

from workbench.apps import PerceptionView

pn.extension()
PerceptionView().page().servable()
