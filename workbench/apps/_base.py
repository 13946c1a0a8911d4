"""What the three views share: the state, the linked map, the zone series, error display.

The map and the series are :class:`holoviews.DynamicMap` objects bound to the state's
parameters, so a change re-renders the data of the existing Bokeh plot instead of
rebuilding the layout (PERFORMANCE.md pitfall 12). Tapping a district on the map sets
``state.zone``; the Zone select box is bound to the same parameter, so both stay in step.
"""

from __future__ import annotations

import logging

import holoviews as hv
import pandas as pd
import panel as pn
import param

from workbench.apps import _data, data, plots, stages
from workbench.apps.state import CityState

__all__ = ["CityView"]

log = logging.getLogger(__name__)


class CityView(pn.viewable.Viewer):
    """Base of the views: a :class:`CityState`, a linked map and a zone series."""

    state = param.ClassSelector(class_=CityState, doc="The shared state (a new one when omitted).")

    title = "City"

    def __init__(self, **params):
        if params.get("state") is None:
            params["state"] = CityState()
        super().__init__(**params)
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        polys = hv.DynamicMap(pn.bind(self._guard(self._map, plots.empty_plot), dataset=self.state.param.dataset,
                                      system=self.state.param.system, variable=self.state.param.variable,
                                      window=self.state.param.time_window))
        outline = hv.DynamicMap(pn.bind(self._guard(self._outline, lambda: hv.Path([])),
                                        dataset=self.state.param.dataset, zone=self.state.param.zone))
        points = hv.DynamicMap(pn.bind(self._guard(self._points, lambda: hv.Points([])),
                                       dataset=self.state.param.dataset, system=self.state.param.system))
        self._tap = hv.streams.Selection1D(source=polys)
        self._tap.param.watch(self._on_tap, "index")
        self.map = polys * outline * points
        series = hv.DynamicMap(pn.bind(self._guard(self._series, plots.empty_plot),
                                       dataset=self.state.param.dataset, system=self.state.param.system,
                                       variable=self.state.param.variable, zone=self.state.param.zone,
                                       window=self.state.param.time_window))
        self.series = series

    # -- error display ---------------------------------------------------------------------
    def _guard(self, fn, fallback):
        """Run ``fn``; on failure show one readable sentence in the alert and draw ``fallback``."""
        def wrapped(*args, **kwargs):
            try:
                out = fn(*args, **kwargs)
            except Exception as exc:  # the app's boundary: show it, log the traceback
                log.exception("%s failed", getattr(fn, "__name__", "view"))
                self.show_error(exc)
                return fallback()
            return out
        wrapped.__name__ = getattr(fn, "__name__", "wrapped")
        return wrapped

    def show_error(self, exc: BaseException | str) -> None:
        """Show a failure as a readable message above the view."""
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.alert.object = f"**Something went wrong.** {text}"
        self.alert.visible = True

    def clear_error(self) -> None:
        self.alert.visible = False

    def stage_pane(self, fn, **deps) -> pn.viewable.Viewable:
        """A pane showing ``fn(**deps)`` (re-run when a dependency changes) with a loading
        indicator; a missing stage shows a note, a failure one readable sentence."""
        def run(**kw):
            try:
                return fn(**kw)
            except stages.StageMissing as exc:
                return pn.pane.Alert(str(exc), alert_type="info")
            except Exception as exc:  # the app's boundary: show it, log the traceback
                log.exception("%s failed", getattr(fn, "__name__", "stage"))
                return pn.pane.Alert(f"**{getattr(fn, '__doc__', '') or 'This panel'} could not be computed.** "
                                     f"{type(exc).__name__}: {exc}", alert_type="danger")
        return pn.panel(pn.bind(run, **deps), loading_indicator=True, sizing_mode="stretch_width")

    # -- the linked map --------------------------------------------------------------------
    def zone_values(self, dataset, system, variable, window) -> tuple[pd.Series, str]:
        """The number per zone that colours the map: the mean of the zone series over the window."""
        frame = data.zone_frame(dataset, system, variable).loc[window[0]:window[1]]
        return frame.mean(), f"mean {_data.label_of(variable)}"

    def _map(self, dataset, system, variable, window):
        if variable is None:
            return plots.empty_plot("no variable")
        values, label = self.zone_values(dataset, system, variable, window)
        polys = _data.zone_polygons(data.city(dataset))
        return plots.zone_shapes(polys, values=values, value_label="value",
                                 title=f"{label} — tap a district").opts(clabel=label)

    def _outline(self, dataset, zone):
        polys = [p for p in _data.zone_polygons(data.city(dataset)) if p["zone"] == zone]
        return hv.Path(polys, kdims=["x", "y"]).opts(color=plots.HIGHLIGHT, line_width=3)

    def _points(self, dataset, system):
        sensors = _data.sensor_table(data.city(dataset), system)
        return hv.Points(sensors, kdims=["lon", "lat"], vdims=["sensor", "zone"]).opts(
            color="black", size=4, tools=["hover"])

    def _on_tap(self, event):
        polys = _data.zone_polygons(self.state.city)
        if event.new:
            zone = polys[event.new[0]]["zone"]
            if zone in self.state.param.zone.objects:
                self.state.zone = zone
        else:
            self.state.zone = _data.ALL

    # -- the zone series -------------------------------------------------------------------
    def _series(self, dataset, system, variable, zone, window):
        self.clear_error()
        if variable is None:
            return plots.empty_plot("no variable")
        label = _data.label_of(variable)
        if zone == _data.ALL:
            frame = data.zone_frame(dataset, system, variable).loc[window[0]:window[1]]
            title, key = f"{label} by district — all zones", "zone"
        else:
            frame = _data.sensor_frame(data.city(dataset), system, variable, zone=zone, window=window)
            title, key = f"{label} — {self.state.zone_label()}", "sensor"
        return plots.series_plot(frame, title=title, ylabel=label, label=key)

    # -- layout ----------------------------------------------------------------------------
    def sidebar(self) -> pn.Column:
        return self.state.controls()

    def main(self) -> list:
        return [pn.pane.HoloViews(self.map, sizing_mode="fixed"),
                pn.pane.HoloViews(self.series, sizing_mode="stretch_width")]

    def page(self, title: str | None = None) -> pn.template.BaseTemplate:
        """The view as a served page: the controls in a sidebar, the panels in the main area."""
        from workbench.apps.layout import page

        self.state.sync_url()
        return page(title or f"Smart City Workbench — {self.title}",
                    [pn.Column(self.alert, *self.main(), sizing_mode="stretch_width")], [self.sidebar()])

    def __panel__(self):
        return pn.Row(
            pn.Column(f"## {self.title}", self.sidebar(), width=320),
            pn.Column(self.alert, *self.main(), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
