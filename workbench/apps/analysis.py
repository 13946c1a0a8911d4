"""The analysis app: district roll-ups, weekly profiles and forecasts, linked to the map.

Panels: the linked map (coloured by the window's mean), the zone series, the hour-of-week
profile of every district (from :func:`workbench.analysis.profile` on
:func:`workbench.analysis.to_zones`; the selected district drawn thick) and the selected
district's one-day-ahead forecast with its prediction interval
(:func:`workbench.analysis.forecast`). Results are cached per process, so every session
shares one computation; a zone change only re-styles and re-fills the existing plots.

Examples
--------
>>> from workbench.apps import AnalysisView
>>> AnalysisView().servable()  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn

from workbench.apps import _data, _figures, data, stages
from workbench.apps._base import CityView

__all__ = ["AnalysisView"]

HOW = "hour of week (0 = Monday 00h)"
STAGE = {"dataset", "system", "variable", "zone"}


class AnalysisView(CityView):
    """Roll-ups, profiles and forecasts per district."""

    title = "Analysis"

    def __init__(self, **params):
        self.profile = _figures.Lines(height=280, datetime=False, xlabel=HOW)
        self.forecast = _figures.Lines(height=280, band=True)
        super().__init__(**params)

    def parts(self) -> list:
        return [*super().parts(), (self._draw_profile, STAGE), (self._draw_forecast, STAGE)]

    def _draw_profile(self):
        s = self.state
        if s.variable is None:
            self.profile.update({}, title="This system has no variable.")
            return
        prof = stages.profile_of(s.dataset, s.system, s.variable).transpose("zone", "hourofweek")
        how = prof["hourofweek"].values
        lines = {str(z): (how, row) for z, row in zip(prof["zone"].values, np.asarray(prof.values, dtype=float))}
        label = _data.label_of(s.variable)
        title = (f"Weekly profile of every district: {label}" if s.zone == _data.ALL
                 else f"Weekly profile — {s.zone_label()} (thick) against every district")
        self.profile.update(lines, title=title, ylabel=label, highlight=None if s.zone == _data.ALL else s.zone)

    def _draw_forecast(self):
        s = self.state
        if s.zone == _data.ALL or s.variable is None:
            self.forecast.update({}, title="Choose a district (tap the map) to see its one-day-ahead forecast.")
            return
        fc = stages.forecast_of(s.dataset, s.system, s.variable).sel(zone=s.zone)
        label = _data.label_of(s.variable)
        hist = data.zone_frame(s.dataset, s.system, s.variable)[s.zone]
        hist = hist[hist.index > hist.index[-1] - pd.Timedelta(days=6)]
        t = fc["time"].values
        self.forecast.update({"observed": (hist.index.values, hist.to_numpy(dtype=float)),
                              "forecast": (t, fc["forecast"].values)},
                             colors={"observed": "#1f77b4", "forecast": "#ff7f0e"}, band=(t, fc["lower"].values,
                                                                                          fc["upper"].values),
                             title=f"One day ahead — {s.zone_label()}", ylabel=label)

    def main(self) -> list:
        return [
            self.beside(self.bokeh(self.map.figure, sizing_mode="fixed"), self.bokeh(self.forecast.figure), wide=True),
            self.bokeh(self.series.figure, sizing_mode="stretch_width"),
            self.bokeh(self.profile.figure, sizing_mode="stretch_width"),
        ]
