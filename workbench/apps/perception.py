"""The perception app: raw readings per system and zone, their quality, and feed checks.

Panels: the linked district map; the zone's series (one curve per sensor, min-max
downsampled); every sensor of the system as a sensor × time raster (binned to at most
400 × 1,200 cells, so a big city never ships its readings to the browser); the quality
flags per zone from :mod:`workbench.perception`; and a *Check a feed* tab that reads an
uploaded file and shows its ingest report and quarantined rows (built when first opened).

Examples
--------
>>> from workbench.apps import PerceptionView
>>> PerceptionView().servable()  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd
import panel as pn

from workbench.apps import _data, _figures, data, stages
from workbench.apps._base import DATA, CityView
from workbench.apps.upload import FeedUpload

__all__ = ["PerceptionView"]


class PerceptionView(CityView):
    """Raw data, quality and anomalies per system and zone, plus an upload checker."""

    title = "Perception"

    def __init__(self, **params):
        self.matrix = _figures.Raster(height=320)
        self.quality = pn.pane.DataFrame(pd.DataFrame(), index=False, sizing_mode="stretch_width", max_rows=50)
        self.quality_note = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        super().__init__(**params)

    def parts(self) -> list:
        return [*super().parts(), (self._draw_matrix, DATA), (self._draw_quality, DATA)]

    def _draw_matrix(self):
        s = self.state
        if s.variable is None:
            self.matrix.update([], [[]], [], title="no variable")
            return
        label = _data.label_of(s.variable)
        times, values, labels = data.matrix_image(s.dataset, s.system, s.variable, data.key(s.window))
        self.matrix.update(times, values, labels, title=f"Every {s.system} sensor: {label}", clabel=label)

    def _draw_quality(self):
        s = self.state
        try:
            summary = stages.quality_summary(s.dataset, s.system, s.variable, data.key(s.window))
        except stages.StageMissing as exc:
            self.quality_note.param.update(object=str(exc), visible=True)
            return
        self.quality_note.visible = False
        self.quality.object = summary

    def main(self) -> list:
        city = pn.Column(
            self.beside(self.bokeh(self.map.figure, sizing_mode="fixed"),
                        pn.Column("### Quality of the readings", self.quality_note, self.quality)),
            self.bokeh(self.series.figure, sizing_mode="stretch_width"),
            self.bokeh(self.matrix.figure, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        return [pn.Tabs(("City", city), ("Check a feed", FeedUpload()), dynamic=True, sizing_mode="stretch_width")]
