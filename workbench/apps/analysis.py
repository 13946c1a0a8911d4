"""The analysis app: district roll-ups, weekly profiles and forecasts, linked to the map.

Panels: the linked map (coloured by the window's mean), the zone series, the hour-of-week
profile of every district (from :func:`workbench.analysis.profile` on
:func:`workbench.analysis.to_zones`) and the selected district's one-day-ahead forecast
with its prediction interval (:func:`workbench.analysis.forecast`). Results are cached
per process, so every session shares one computation.

Examples
--------
>>> from workbench.apps import AnalysisView
>>> AnalysisView().servable()  # doctest: +SKIP
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from workbench.apps import _data, data, plots, stages
from workbench.apps._base import CityView

__all__ = ["AnalysisView"]


class AnalysisView(CityView):
    """Roll-ups, profiles and forecasts per district."""

    title = "Analysis"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state.param
        self.profile = self.stage_pane(self._profile, dataset=s.dataset, system=s.system, variable=s.variable,
                                       zone=s.zone)
        self.forecast = self.stage_pane(self._forecast, dataset=s.dataset, system=s.system, variable=s.variable,
                                        zone=s.zone)

    def _profile(self, dataset, system, variable, zone):
        """The weekly profile"""
        if variable is None:
            return pn.pane.Alert("This system has no variable.", alert_type="info")
        prof = stages.profile_of(dataset, system, variable)
        label = _data.label_of(variable)
        zones = [str(z) for z in prof["zone"].values]
        values = np.asarray(prof.transpose("zone", "hourofweek").values, dtype=float)
        if zone != _data.ALL and zone in zones:
            i = zones.index(zone)
            curve = hv.Curve((prof["hourofweek"].values, values[i]), "hour of week (0 = Monday 00h)", label)
            return pn.pane.HoloViews(curve.opts(title=f"Weekly profile — {self.state.zone_label()}", responsive=True,
                                                height=280, tools=["hover"], xticks=list(range(0, 169, 24))),
                                     sizing_mode="stretch_width")
        img = hv.Image((prof["hourofweek"].values, np.arange(len(zones)), values),
                       ["hour of week (0 = Monday 00h)", "zone"], label)
        return pn.pane.HoloViews(img.opts(title=f"Weekly profile of every district: {label}", cmap="viridis",
                                          colorbar=True, responsive=True, height=280, tools=["hover"],
                                          yticks=list(enumerate(zones)), xticks=list(range(0, 169, 24))),
                                 sizing_mode="stretch_width")

    def _forecast(self, dataset, system, variable, zone):
        """The forecast"""
        if zone == _data.ALL:
            return pn.pane.Alert("Choose a district (tap the map) to see its one-day-ahead forecast.",
                                 alert_type="info")
        fc = stages.forecast_of(dataset, system, variable).sel(zone=zone)
        label = _data.label_of(variable)
        hist = data.zone_frame(dataset, system, variable)[zone]
        hist = hist[hist.index > hist.index[-1] - pd.Timedelta(days=6)]
        t = fc["time"].values
        band = hv.Area((t, fc["lower"].values, fc["upper"].values), "time", [label, "upper"],
                       label="interval").opts(alpha=0.3, color="#ff7f0e")
        plot = (hv.Curve((hist.index.values, hist.values), "time", label, label="observed").opts(color="#1f77b4")
                * band * hv.Curve((t, fc["forecast"].values), "time", label, label="forecast").opts(color="#ff7f0e"))
        return pn.pane.HoloViews(plot.opts(title=f"One day ahead — {self.state.zone_label()}", responsive=True,
                                           height=280, legend_position="top_left"), sizing_mode="stretch_width")

    def main(self) -> list:
        return [
            pn.Row(pn.pane.HoloViews(self.map, sizing_mode="fixed"),
                   pn.Column(self.forecast, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            pn.pane.HoloViews(self.series, sizing_mode="stretch_width"),
            self.profile,
        ]
