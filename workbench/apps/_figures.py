"""Bokeh figures the views update in place.

A change of zone, system or window pushes new columns into the glyphs these figures already
hold (a small data patch) instead of building new plots: returning a new layout, or an
overlay whose curves change, makes HoloViews build new Bokeh models and the browser lay the
page out again (PERFORMANCE.md pitfall 12). Every series reaching these figures is already
downsampled (:func:`workbench.apps._data.minmax`) or binned (:func:`~workbench.apps._data.block_mean`).
"""

from __future__ import annotations

import numpy as np
from bokeh.models import (BasicTicker, ColorBar, ColumnDataSource, FixedTicker, HoverTool, LinearColorMapper,
                          TapTool)
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure

__all__ = ["Lines", "ZoneMap", "Raster", "ms", "map_size", "PALETTE", "HIGHLIGHT"]

#: line colours, cycled
PALETTE = list(Category10_10)
#: the colour of a selected zone's outline
HIGHLIGHT = "#d62728"
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def ms(t) -> np.ndarray:
    """Datetimes as milliseconds since the epoch (what Bokeh's datetime axes take)."""
    return np.asarray(t, dtype="datetime64[ms]").astype("int64").astype(float)


def map_size(polys: list[dict], width: int = 420) -> tuple[int, int]:
    """(frame_width, frame_height) keeping a lon/lat map's true aspect at its latitude."""
    xs = np.concatenate([p["x"] for p in polys])
    ys = np.concatenate([p["y"] for p in polys])
    dx = (xs.max() - xs.min()) * np.cos(np.radians(ys.mean()))
    dy = ys.max() - ys.min()
    return width, int(np.clip(width * dy / max(dx, 1e-9), 150, 900))


def _figure(title: str, height: int, **kw):
    fig = figure(title=title, height=height, tools=TOOLS, toolbar_location="above", **kw)
    fig.title.text_font_size = "13px"
    return fig


class Lines:
    """Curves as one ``MultiLine`` glyph (one line per label), with an optional shaded band.

    ``update`` replaces the lines, the title and the band in place.
    """

    def __init__(self, *, title: str = "", ylabel: str = "", xlabel: str = "time", height: int = 300,
                 datetime: bool = True, band: bool = False, legend: bool = True, width: int | None = None):
        self.source = ColumnDataSource({"xs": [], "ys": [], "label": [], "color": [], "width": [], "alpha": []})
        size = {"width": width} if width else {"sizing_mode": "stretch_width"}  # fixed widths lay out faster
        fig = _figure(title, height, x_axis_type="datetime" if datetime else "linear", x_axis_label=xlabel,
                      y_axis_label=ylabel, **size)
        self.band = None
        if band:
            self.band = ColumnDataSource({"x": [], "lower": [], "upper": []})
            fig.varea("x", "lower", "upper", source=self.band, fill_color="#ff7f0e", fill_alpha=0.3,
                      legend_label="interval")
        kw = {"legend_field": "label"} if legend else {}
        self.renderer = fig.multi_line("xs", "ys", source=self.source, line_color="color", line_width="width",
                                       line_alpha="alpha", **kw)
        xfmt = "{%F %H:%M}" if datetime else "{0,0}"
        fig.add_tools(HoverTool(renderers=[self.renderer], tooltips=[("", "@label"), (xlabel, f"$x{xfmt}"),
                                                                     ("value", "$y{0,0.00}")],
                                formatters={"$x": "datetime"} if datetime else {}))
        if fig.legend:
            legend = fig.legend[0]
            legend.click_policy, legend.label_text_font_size, legend.spacing = "hide", "11px", 0
            fig.add_layout(legend, "right")
        self.figure = fig

    def update(self, lines: dict, *, title: str | None = None, ylabel: str | None = None,
               highlight: str | None = None, colors: dict | None = None, band=None) -> None:
        """Draw ``lines`` (``{label: (x, y)}``; x datetimes or numbers) in place of the old ones.

        ``highlight`` draws one label thick and dims the others; ``band`` is ``(x, lower, upper)``.
        """
        labels = list(lines)
        xs = [ms(x) if np.issubdtype(np.asarray(x).dtype, np.datetime64) else np.asarray(x, float)
              for x, _ in lines.values()]
        ys = [np.asarray(y, dtype="float32") for _, y in lines.values()]  # half the bytes; x stays exact
        col = [(colors or {}).get(k, PALETTE[i % len(PALETTE)]) for i, k in enumerate(labels)]
        width = [3.0 if k == highlight else 1.2 for k in labels]
        alpha = [1.0 if highlight in (None, k) else 0.25 for k in labels]
        if title is not None:
            self.figure.title.text = title
        if ylabel is not None:
            self.figure.yaxis.axis_label = ylabel
        if self.figure.legend:
            self.figure.legend[0].visible = 0 < len(labels) <= 16
        if self.band is not None:
            x, lo, hi = band if band is not None else ([], [], [])
            self.band.data = {"x": ms(x) if len(x) else [], "lower": np.asarray(lo, float),
                              "upper": np.asarray(hi, float)}
        self.source.data = {"xs": xs, "ys": ys, "label": labels, "color": col, "width": width, "alpha": alpha}


class ZoneMap:
    """District polygons coloured by a value per zone, the selected zone outlined, and sensors as points.

    ``on_tap(fn)`` calls ``fn(zone or None)`` when a district is tapped (or the tap cleared).
    """

    def __init__(self, polys: list[dict], *, frame_width: int, frame_height: int):
        self.mapper = LinearColorMapper(palette=Viridis256, nan_color="#dfe7ef")
        self.source = ColumnDataSource({})
        self.outline = ColumnDataSource({"xs": [], "ys": []})
        self.points = ColumnDataSource({"lon": [], "lat": [], "sensor": [], "zone": []})
        # fixed outer size (frame + axes + colour bar), the frame's aspect kept by the data ranges
        fig = _figure("Districts", frame_height + 100, width=frame_width + 190, match_aspect=True,
                      x_axis_label="longitude", y_axis_label="latitude")
        self.patches = fig.patches("xs", "ys", source=self.source, fill_color={"field": "value", "transform": self.mapper},
                                   line_color="white", line_width=1, fill_alpha=0.9,
                                   selection_fill_alpha=1.0, nonselection_fill_alpha=0.9)
        fig.multi_line("xs", "ys", source=self.outline, line_color=HIGHLIGHT, line_width=3)
        dots = fig.scatter("lon", "lat", source=self.points, size=4, color="black")
        fig.add_tools(TapTool(renderers=[self.patches]),
                      HoverTool(renderers=[self.patches], tooltips=[("zone", "@zone · @zone_name"), ("", "@value{0,0.00}")]),
                      HoverTool(renderers=[dots], tooltips=[("sensor", "@sensor"), ("zone", "@zone")]))
        self.colorbar = ColorBar(color_mapper=self.mapper, ticker=BasicTicker(), title="", width=10)
        fig.add_layout(self.colorbar, "right")
        fig.grid.visible = False
        self.figure = fig
        self.set_polygons(polys)

    def set_polygons(self, polys: list[dict]) -> None:
        self.polys = polys
        self.source.data = {"xs": [p["x"] for p in polys], "ys": [p["y"] for p in polys],
                            "zone": [p["zone"] for p in polys], "zone_name": [p["zone_name"] for p in polys],
                            "value": np.full(len(polys), np.nan)}

    def set_values(self, values, *, label: str, title: str) -> None:
        """Colour the districts by ``values`` (a Series by zone id)."""
        v = np.array([float(values.get(p["zone"], np.nan)) for p in self.polys])
        finite = v[np.isfinite(v)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self.mapper.update(low=lo, high=hi if hi > lo else lo + 1)
        self.colorbar.title = label
        self.figure.title.text = title
        self.source.data["value"] = v  # one column patched

    def set_zone(self, zone: str) -> None:
        """Outline ``zone`` (none for an unknown zone or "all")."""
        chosen = [p for p in self.polys if p["zone"] == zone]
        self.outline.data = {"xs": [p["x"] for p in chosen], "ys": [p["y"] for p in chosen]}
        index = [i for i, p in enumerate(self.polys) if p["zone"] == zone]
        if list(self.source.selected.indices) != index:
            self.source.selected.indices = index

    def set_points(self, sensors) -> None:
        """The sensors (a frame with ``lon, lat, sensor, zone``)."""
        self.points.data = {k: sensors[k].to_numpy() for k in ("lon", "lat", "sensor", "zone")}

    def on_tap(self, fn) -> None:
        def changed(attr, old, new):
            fn(self.polys[new[0]]["zone"] if new else None)
        self.source.selected.on_change("indices", changed)


class Raster:
    """A (row, time) matrix as one image, rows labelled (sensors, districts)."""

    def __init__(self, *, title: str = "", height: int = 320, palette=Viridis256, clim=None):
        self.mapper = LinearColorMapper(palette=palette, nan_color=(0, 0, 0, 0))
        self.clim = clim
        if clim:
            self.mapper.update(low=clim[0], high=clim[1])
        self.source = ColumnDataSource({"image": [], "x": [], "y": [], "dw": [], "dh": []})
        fig = _figure(title, height, x_axis_type="datetime", sizing_mode="stretch_width")
        fig.image("image", x="x", y="y", dw="dw", dh="dh", source=self.source, color_mapper=self.mapper)
        fig.add_tools(HoverTool(tooltips=[("time", "$x{%F %H:%M}"), ("value", "@image{0,0.00}")],
                                formatters={"$x": "datetime"}))
        self.colorbar = ColorBar(color_mapper=self.mapper, ticker=BasicTicker(), width=10)
        fig.add_layout(self.colorbar, "right")
        fig.grid.visible = False
        fig.yaxis.ticker = FixedTicker(ticks=[])
        self.figure = fig

    def update(self, times, values: np.ndarray, labels: list[str], *, title: str, clabel: str = "") -> None:
        """Draw ``values`` (rows × len(times)) with the rows labelled ``labels``."""
        t = ms(times)
        step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        v = np.asarray(values, dtype="float32")  # half the bytes of float64
        finite = v[np.isfinite(v)]
        if not self.clim and finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            self.mapper.update(low=lo, high=hi if hi > lo else lo + 1)
        every = max(1, len(labels) // 12)
        self.figure.yaxis.ticker = FixedTicker(ticks=list(range(0, len(labels), every)))
        self.figure.yaxis.major_label_overrides = {i: labels[i] for i in range(0, len(labels), every)}
        self.figure.title.text = title
        self.colorbar.title = clabel
        self.source.data = {"image": [v], "x": [t[0] if len(t) else 0.0], "y": [-0.5],
                            "dw": [t[-1] - t[0] + step if len(t) else 1.0], "dh": [max(len(labels), 1)]}
