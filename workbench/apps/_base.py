"""What the three views share: the state, the linked map, the zone series, error display.

The map and the series are Bokeh figures built once per view (:mod:`workbench.apps._figures`);
a change of the state pushes new data into them in place (PERFORMANCE.md pitfall 12), and
what is drawn comes ready-made from the per-process caches (:mod:`workbench.apps.data`,
:mod:`workbench.apps.stages`), so a zone change is a dictionary lookup and a small data
patch. Tapping a district on the map sets ``state.zone``; the Zone select box is bound to
the same parameter, so both stay in step.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

import pandas as pd
import panel as pn
import param

from workbench.apps import _data, _figures, data, stages
from workbench.apps.state import CityState

__all__ = ["CityView"]

log = logging.getLogger(__name__)

DATA = frozenset({"dataset", "system", "variable", "time_window"})


def _served() -> bool:
    return pn.state.curdoc is not None and pn.state.curdoc.session_context is not None


class CityView(pn.viewable.Viewer):
    """Base of the views: a :class:`CityState`, a linked map and a zone series.

    Subclasses add ``(draw, parameters)`` pairs to :meth:`parts`; :meth:`refresh` runs the
    draws whose parameters changed.
    """

    state = param.ClassSelector(class_=CityState, doc="The shared state (a new one when omitted).")

    title = "City"

    def __init__(self, **params):
        if params.get("state") is None:
            params["state"] = CityState()
        super().__init__(**params)
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        polys = _data.zone_polygons(self.state.city)
        fw, fh = _figures.map_size(polys)
        self.map = _figures.ZoneMap(polys, frame_width=fw, frame_height=fh)
        self.map.on_tap(self._on_tap)
        self.series = _figures.Lines(height=300)
        self._layouts: list = []
        self._bokeh: list = []
        self.refresh()
        self.state.param.watch(self._changed, ["dataset", "system", "variable", "zone", "time_window"])

    # -- drawing ---------------------------------------------------------------------------
    def parts(self) -> list:
        """``(draw, parameters)``: what to redraw when one of ``parameters`` changes (in order)."""
        return [(self._draw_polygons, {"dataset"}), (self._draw_map, DATA), (self._draw_points, {"dataset", "system"}),
                (self._draw_outline, {"dataset", "zone"}), (self._draw_series, DATA | {"zone"})]

    def _changed(self, *events) -> None:
        changed = {e.name for e in events}
        if changed <= {"zone"}:  # a lookup and a small patch: no loading indicator
            self.refresh(changed)
            return
        with pn.param.set_values(*self._layouts, loading=True) if self._layouts else nullcontext():
            self.refresh(changed)

    def refresh(self, changed: set | None = None) -> None:
        """Redraw the parts depending on ``changed`` parameters (every part when ``None``)."""
        self.clear_error()
        for draw, deps in self.parts():
            if changed is None or changed & deps:
                try:
                    draw()
                except stages.StageMissing as exc:
                    self.show_error(str(exc), kind="info")
                except Exception as exc:  # the app's boundary: show it, log the traceback
                    log.exception("%s failed", draw.__name__)
                    self.show_error(exc)
        if self._bokeh and not _served():  # in a notebook, in-place changes are pushed by hand
            pn.io.push_notebook(*self._bokeh)

    def _draw_polygons(self):
        self.map.set_polygons(_data.zone_polygons(self.state.city))

    def _draw_map(self):
        s = self.state
        if s.variable is None:
            self.map.set_values(pd.Series(dtype=float), label="", title="no variable")
            return
        values, label = self.zone_values(s.dataset, s.system, s.variable, data.key(s.window))
        self.map.set_values(values, label=label, title=f"{label} — tap a district")

    def _draw_points(self):
        self.map.set_points(_data.sensor_table(self.state.city, self.state.system))

    def _draw_outline(self):
        self.map.set_zone(self.state.zone)

    def _draw_series(self):
        s = self.state
        if s.variable is None:
            self.series.update({}, title="no variable")
            return
        label = _data.label_of(s.variable)
        curves = data.zone_series(s.dataset, s.system, s.variable, data.key(s.window))
        title = f"{label} by district — all zones" if s.zone == _data.ALL else f"{label} — {s.zone_label()}"
        self.series.update(curves.get(s.zone, {}), title=title, ylabel=label)

    def zone_values(self, dataset, system, variable, window) -> tuple[pd.Series, str]:
        """The number per zone that colours the map: the mean of the zone series over the window."""
        frame = data.zone_frame(dataset, system, variable).loc[window[0]:window[1]]
        return frame.mean(), f"mean {_data.label_of(variable)}"

    def _on_tap(self, zone: str | None) -> None:
        if zone is None:
            self.state.zone = _data.ALL
        elif zone in self.state.param.zone.objects:
            self.state.zone = zone

    # -- error display ---------------------------------------------------------------------
    def show_error(self, exc: BaseException | str, kind: str = "danger") -> None:
        """Show a failure as a readable message above the view."""
        text = exc if isinstance(exc, str) else f"**Something went wrong.** {type(exc).__name__}: {exc}"
        self.alert.param.update(object=text, alert_type=kind, visible=True)

    def clear_error(self) -> None:
        if self.alert.visible:
            self.alert.visible = False

    # -- layout ----------------------------------------------------------------------------
    def bokeh(self, fig, **kw) -> pn.pane.Bokeh:
        """A pane of one of this view's figures (remembered, to push in-place changes in a notebook)."""
        pane = pn.pane.Bokeh(fig, **kw)
        self._bokeh.append(pane)
        return pane

    def beside(self, left, right, *, wide: bool = False) -> pn.Row | pn.Column:
        """``left`` (the map) and ``right`` side by side (``right`` taking the remaining width),
        or ``right`` below when it needs the ``wide`` width (a time axis)."""
        right.sizing_mode = "stretch_width"
        return (pn.Column if wide else pn.Row)(left, right, sizing_mode="stretch_width")

    def sidebar(self) -> pn.Column:
        return self.state.controls()

    def main(self) -> list:
        return [self.bokeh(self.map.figure, sizing_mode="fixed"),
                self.bokeh(self.series.figure, sizing_mode="stretch_width")]

    def _body(self) -> pn.Column:
        body = pn.Column(self.alert, *self.main(), sizing_mode="stretch_width")
        self._layouts.append(body)
        return body

    def page(self, title: str | None = None) -> pn.template.BaseTemplate:
        """The view as a served page: the controls in a sidebar, the panels in the main area."""
        from workbench.apps.layout import page

        self.state.sync_url()
        return page(title or f"Smart City Workbench — {self.title}", [self._body()], [self.sidebar()])

    def __panel__(self):
        """The view inline (a notebook cell): the controls in a row above the panels."""
        controls = pn.FlexBox(*self.state.controls(width=230).objects)
        return pn.Column(f"## {self.title}", controls, self._body(), sizing_mode="stretch_width")

