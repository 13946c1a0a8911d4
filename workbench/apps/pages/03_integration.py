"""Fallback page served by ``workbench serve`` when ``notebooks/03_integration.ipynb`` is absent."""

import panel as pn

from workbench.apps import IntegrationView

pn.extension()
IntegrationView().page().servable()
