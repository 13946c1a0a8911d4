"""The integration app: the city index, the incidents and the alerts they raise.

Panels: the map coloured by the composite city index (mean over the window, from
:func:`workbench.integration.city_index`), the index of every district over time, the
selected variable's series, and the incidents (:func:`workbench.integration.detect_incidents`)
and routed alerts (:func:`workbench.integration.respond`) of the window and district.

Examples
--------
>>> from workbench.apps import IntegrationView
>>> IntegrationView().servable()  # doctest: +SKIP
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from workbench.apps import _data, stages
from workbench.apps._base import CityView

__all__ = ["IntegrationView"]


def _in_window(table: pd.DataFrame, zone: str, window) -> pd.DataFrame:
    if table is None or not len(table):
        return table
    t = table
    if zone != _data.ALL and "zone" in t:
        t = t[t["zone"].astype(str) == zone]
    if {"start", "end"} <= set(t.columns):
        t = t[(pd.to_datetime(t["end"]) >= pd.Timestamp(window[0])) & (pd.to_datetime(t["start"]) <= pd.Timestamp(window[1]))]
    return t


class IntegrationView(CityView):
    """City index, incidents and alerts per district."""

    title = "Integration"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state.param
        self.index_plot = self.stage_pane(self._index, dataset=s.dataset, window=s.time_window)
        self.incidents = self.stage_pane(self._incidents, dataset=s.dataset, zone=s.zone, window=s.time_window)
        self.alerts = self.stage_pane(self._alerts, dataset=s.dataset, zone=s.zone, window=s.time_window)

    def zone_values(self, dataset, system, variable, window):
        try:
            ix = stages.index(dataset)["index"].sel(time=slice(window[0], window[1]))
        except Exception:  # no index yet: colour by the variable, as the other apps do
            return super().zone_values(dataset, system, variable, window)
        return pd.Series(ix.mean("time").values, index=[str(z) for z in ix["zone"].values]), "city index (0–100)"

    def _index(self, dataset, window):
        """The city index"""
        ix = stages.index(dataset)["index"].sel(time=slice(window[0], window[1])).transpose("zone", "time")
        zones = [str(z) for z in ix["zone"].values]
        img = hv.Image((ix["time"].values, np.arange(len(zones)), np.asarray(ix.values, dtype=float)),
                       ["time", "zone"], "city index")
        return pn.pane.HoloViews(img.opts(title="City index per district (100 = normal)", cmap="RdYlGn",
                                          clim=(0, 100), colorbar=True, responsive=True, height=300,
                                          tools=["hover"], yticks=list(enumerate(zones))),
                                 sizing_mode="stretch_width")

    def _incidents(self, dataset, zone, window):
        """The incidents"""
        t = _in_window(stages.incidents(dataset), zone, window)
        if t is None or not len(t):
            return pn.pane.Markdown("No incident in this window and district.")
        return pn.pane.DataFrame(t.head(200), index=False, sizing_mode="stretch_width")

    def _alerts(self, dataset, zone, window):
        """The alerts"""
        t = _in_window(stages.alerts(dataset), zone, window)
        if t is None or not len(t):
            return pn.pane.Markdown("No alert in this window and district.")
        return pn.pane.DataFrame(t.head(200), index=False, sizing_mode="stretch_width")

    def main(self) -> list:
        return [
            pn.Row(pn.pane.HoloViews(self.map, sizing_mode="fixed"), self.index_plot, sizing_mode="stretch_width"),
            pn.pane.HoloViews(self.series, sizing_mode="stretch_width"),
            pn.Tabs(("Incidents", self.incidents), ("Alerts", self.alerts), sizing_mode="stretch_width"),
        ]
