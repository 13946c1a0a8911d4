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

import pandas as pd
import panel as pn

from workbench.apps import _data, _figures, data, stages
from workbench.apps._base import CityView

__all__ = ["IntegrationView"]

TABLE = {"dataset", "zone", "time_window"}


def _in_window(table: pd.DataFrame, zone: str, window) -> pd.DataFrame:
    if table is None or not len(table):
        return table
    t = table
    if zone != _data.ALL and "zone" in t:
        t = t[t["zone"].astype(str) == zone]
    if {"start", "end"} <= set(t.columns):
        t = t[(pd.to_datetime(t["end"]) >= pd.Timestamp(window[0])) & (pd.to_datetime(t["start"]) <= pd.Timestamp(window[1]))]
    return t


def _table() -> pn.Column:
    return pn.Column(pn.pane.Markdown("", visible=False),
                     pn.pane.DataFrame(pd.DataFrame(), index=False, sizing_mode="stretch_width"),
                     sizing_mode="stretch_width")


class IntegrationView(CityView):
    """City index, incidents and alerts per district."""

    title = "Integration"

    def __init__(self, **params):
        self.index_plot = _figures.Raster(height=300, palette="RdYlGn11", clim=(0, 100))
        self.incidents, self.alerts = _table(), _table()
        super().__init__(**params)

    def parts(self) -> list:
        return [*super().parts(), (self._draw_index, {"dataset", "time_window"}),
                (self._draw_incidents, TABLE), (self._draw_alerts, TABLE)]

    def zone_values(self, dataset, system, variable, window):
        try:
            ix = stages.index(dataset)["index"].sel(time=slice(window[0], window[1]))
        except Exception:  # no index yet: colour by the variable, as the other apps do
            return super().zone_values(dataset, system, variable, window)
        return pd.Series(ix.mean("time").values, index=[str(z) for z in ix["zone"].values]), "city index (0–100)"

    def _draw_index(self):
        lo, hi = data.key(self.state.window)
        ix = stages.index(self.state.dataset)["index"].sel(time=slice(lo, hi)).transpose("zone", "time")
        values, cols = _data.block_mean(ix.values, data.RASTER_COLUMNS, axis=1)
        self.index_plot.update(ix["time"].values[cols], values, [str(z) for z in ix["zone"].values],
                               title="City index per district (100 = normal)", clabel="city index")

    def _fill(self, pane: pn.Column, table: pd.DataFrame, what: str) -> None:
        t = _in_window(table, self.state.zone, self.state.window)
        note, frame = pane
        if t is None or not len(t):
            note.param.update(object=f"No {what} in this window and district.", visible=True)
            frame.visible = False
        else:
            note.visible = False
            frame.param.update(object=t.head(200), visible=True)

    def _draw_incidents(self):
        self._fill(self.incidents, stages.incidents(self.state.dataset), "incident")

    def _draw_alerts(self):
        self._fill(self.alerts, stages.alerts(self.state.dataset), "alert")

    def main(self) -> list:
        return [
            self.beside(self.bokeh(self.map.figure, sizing_mode="fixed"), self.bokeh(self.index_plot.figure), wide=True),
            self.bokeh(self.series.figure, sizing_mode="stretch_width"),
            pn.Tabs(("Incidents", self.incidents), ("Alerts", self.alerts), dynamic=True, sizing_mode="stretch_width"),
        ]
