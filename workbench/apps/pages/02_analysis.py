"""Fallback page served by ``workbench serve`` when ``notebooks/02_analysis.ipynb`` is absent."""

import panel as pn

from workbench.apps import AnalysisView

pn.extension()
AnalysisView().page().servable()
