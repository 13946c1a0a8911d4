"""The perception app: raw readings per system and zone, their quality, and feed checks.

Panels: the linked district map; the zone's series (one curve per sensor, LTTB-downsampled);
every sensor of the system as a sensor × time raster (rasterised with datashader, so a big
city never ships its points to the browser), with quality flags and anomaly scores from
:mod:`workbench.perception` when that stage is installed; and a *Check a feed* tab that
reads an uploaded file and shows its ingest report and quarantined rows.

Examples
--------
>>> from workbench.apps import PerceptionView
>>> PerceptionView().servable()  # doctest: +SKIP
"""

from __future__ import annotations

import holoviews as hv
import panel as pn
from holoviews.operation.datashader import rasterize

from workbench.apps import _data, data, plots, stages
from workbench.apps._base import CityView
from workbench.apps.upload import FeedUpload

__all__ = ["PerceptionView"]


class PerceptionView(CityView):
    """Raw data, quality and anomalies per system and zone, plus an upload checker."""

    title = "Perception"

    def __init__(self, **params):
        super().__init__(**params)
        matrix = hv.DynamicMap(pn.bind(self._guard(self._matrix, plots.empty_plot),
                                       dataset=self.state.param.dataset, system=self.state.param.system,
                                       variable=self.state.param.variable, window=self.state.param.time_window))
        self.matrix = rasterize(matrix, width=1200, height=max(40, 1)).opts(
            hv.opts.Image(cmap="viridis", colorbar=True, responsive=True, height=320, tools=["hover"]))
        self.quality = pn.panel(pn.bind(self._quality, dataset=self.state.param.dataset,
                                        system=self.state.param.system, variable=self.state.param.variable,
                                        window=self.state.param.time_window),
                                loading_indicator=True, sizing_mode="stretch_width")
        self.upload = FeedUpload()

    def _matrix(self, dataset, system, variable, window):
        if variable is None:
            return plots.empty_plot("no variable")
        m = data.sensor_matrix(dataset, system, variable).sel(time=slice(window[0], window[1]))
        return plots.matrix_plot(m, title=f"Every {system} sensor: {_data.label_of(variable)}",
                                 clabel=_data.label_of(variable))

    def _quality(self, dataset, system, variable, window):
        try:
            summary = stages.quality_summary(dataset, system, variable, window)
        except stages.StageMissing as exc:
            return pn.pane.Alert(str(exc), alert_type="info")
        except Exception as exc:  # the app's boundary: one readable sentence
            return pn.pane.Alert(f"**Quality flags could not be computed.** {type(exc).__name__}: {exc}",
                                 alert_type="danger")
        return pn.pane.DataFrame(summary, index=False, sizing_mode="stretch_width", max_rows=50)

    def main(self) -> list:
        city = pn.Column(
            pn.Row(pn.pane.HoloViews(self.map, sizing_mode="fixed"),
                   pn.Column("### Quality of the readings", self.quality, sizing_mode="stretch_width")),
            pn.pane.HoloViews(self.series, sizing_mode="stretch_width"),
            pn.pane.HoloViews(self.matrix, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        return [pn.Tabs(("City", city), ("Check a feed", self.upload), sizing_mode="stretch_width")]
