"""HoloViews plot builders shared by the notebooks and the Panel views.

Each function takes a city (or a frame made by :mod:`workbench.apps._data`) and returns a
HoloViews element or overlay; no Panel state is involved, so they render inline in
JupyterLab, in a served notebook and in the views alike. Maps draw the district polygons
from ``/zones`` and the sensors from their ``lat``/``lon`` coordinates (no tile server).

Examples
--------
>>> import workbench
>>> from workbench.apps import plots
>>> city = workbench.open_city("reference")  # doctest: +SKIP
>>> plots.zone_map(city, "energy") + plots.week_plot(city, "energy")  # doctest: +SKIP
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from workbench.apps import _data
from workbench.apps._data import ALL
from workbench.apps._figures import Lines, ZoneMap, map_size

__all__ = ["map_size", "zone_map", "zone_shapes", "series_plot", "week_plot", "matrix_plot",
           "week_figure", "city_map_figure", "overview_figure"]

hv.extension("bokeh", logo=False)

#: the colour of a selected zone's outline and of flagged readings
HIGHLIGHT = "#d62728"


def zone_map(
    city: xr.DataTree,
    system: str | None = None,
    *,
    zone: str = ALL,
    values: pd.Series | None = None,
    value_label: str = "value",
    title: str | None = None,
    width: int = 420,
) -> hv.Overlay:
    """District polygons (coloured by ``values`` per zone when given), the selected
    ``zone`` outlined, and the sensors of ``system`` as points.

    Parameters
    ----------
    city
        The city tree.
    system
        Whose sensors to draw (none when ``None``).
    zone
        A zone id to outline (``"all"``: none).
    values
        One number per zone id (e.g. a mean over the time window) to colour the polygons.
    """
    polys = _data.zone_polygons(city)
    shapes = zone_shapes(polys, values=values, value_label=value_label, title=title, width=width)
    layers = [shapes]
    chosen = [p for p in polys if p["zone"] == zone]
    layers.append(hv.Path(chosen, kdims=["x", "y"]).opts(color=HIGHLIGHT, line_width=3))
    if system is not None:
        sensors = _data.sensor_table(city, system)
        layers.append(hv.Points(sensors, kdims=["lon", "lat"], vdims=["sensor", "zone"]).opts(
            color="black", size=4, tools=["hover"], marker="circle"))
    return hv.Overlay(layers).opts(show_legend=False)


def zone_shapes(polys: list[dict], *, values: pd.Series | None = None, value_label: str = "value",
                title: str | None = None, width: int = 420) -> hv.Polygons:
    """The district polygons alone (tap-selectable), coloured by ``values`` per zone when given."""
    fw, fh = map_size(polys, width)
    polys = [dict(p) for p in polys]
    for p in polys:
        p[value_label] = float(values.get(p["zone"], np.nan)) if values is not None else 0.0
    return hv.Polygons(polys, kdims=["x", "y"], vdims=["zone", "zone_name", value_label]).opts(
        color=value_label if values is not None else "#dfe7ef",
        cmap="viridis", colorbar=values is not None, line_color="white", line_width=1,
        tools=["hover", "tap"], nonselection_alpha=0.9, selection_alpha=1.0,
        frame_width=fw, frame_height=fh, xlabel="longitude", ylabel="latitude",
        title=title or "Districts", toolbar="above", clabel=value_label if values is not None else "",
    )


def series_plot(frame: pd.DataFrame, *, title: str, ylabel: str, height: int = 300,
                label: str = "series", n_bins: int = 600) -> hv.NdOverlay:
    """One curve per column of a time-indexed frame, min-max downsampled to ``n_bins`` bins
    (at most ``2 * n_bins`` points per curve reach the browser)."""
    curves = {col: hv.Curve((x, y), "time", ylabel) for col, (x, y) in _data.minmax(frame, n_bins).items()}
    if not curves:
        curves = {"none": hv.Curve(([], []), "time", ylabel)}
    return hv.NdOverlay(curves, kdims=[label]).opts(
        hv.opts.Curve(line_width=1.2, tools=["hover"]),
        hv.opts.NdOverlay(title=title, responsive=True, height=height, legend_position="right",
                          show_legend=len(curves) <= 16, legend_cols=1 if len(curves) <= 8 else 2),
    )


def week_plot(city: xr.DataTree, system: str, var: str | None = None, *, days: int = 7,
              width: int | None = None) -> hv.NdOverlay:
    """The first ``days`` of one variable of ``system``, one line per zone.

    An overlay of one curve per zone (hover names the zone). A single multi-line glyph
    coloured by zone was tried: HoloViews then draws every segment apart and the browser
    needed ~100 s for the overview page.
    """
    var = var or _data.data_variables(city, system)[0]
    frame = _first_days(city, system, var, days)
    label = _data.label_of(var)
    curves = {str(z): hv.Curve((frame.index.values, frame[z].to_numpy(dtype=float)), "time", label)
              for z in frame.columns}
    size = {"width": width} if width else {"responsive": True}  # fixed widths lay out faster in a long page
    return hv.NdOverlay(curves, kdims="zone").opts(
        hv.opts.Curve(line_width=1.2, tools=["hover"]),
        hv.opts.NdOverlay(show_legend=False, height=300,
                          title=f"{system.capitalize()}: {label}, first week by district", **size),
    )


def matrix_plot(matrix: xr.DataArray, *, title: str, clabel: str) -> hv.Image:
    """A (row, time) matrix as an image (rasterise it with datashader for big cities)."""
    t = matrix["time"].values
    img = hv.Image((t, matrix["row"].values, matrix.values), ["time", "sensor"], clabel)
    ticks = [(i, f"{s} ({z})") for i, s, z in zip(matrix["row"].values, matrix["sensor"].values,
                                                  matrix["zone"].values)]
    step = max(1, len(ticks) // 12)
    return img.opts(cmap="viridis", colorbar=True, responsive=True, height=320, title=title,
                    yticks=ticks[::step], tools=["hover"], clabel=clabel)


def _first_days(city: xr.DataTree, system: str, var: str, days: int) -> pd.DataFrame:
    t0, _ = _data.time_bounds(city)
    return _data.zone_frame(city, system, var, window=(t0, t0 + pd.Timedelta(days=days) - pd.Timedelta("1ns")))


def week_figure(city: xr.DataTree, system: str, var: str | None = None, *, days: int = 7, width: int = 760,
                height: int = 300, short: bool = False):
    """The first ``days`` of one variable of ``system``, one line per zone, as one Bokeh
    figure with a single multi-line glyph (hover names the zone); ``short`` leaves "first week
    by district" out of the title."""
    var = var or _data.data_variables(city, system)[0]
    frame = _first_days(city, system, var, days)
    label = _data.label_of(var)
    lines = Lines(height=height, ylabel=label, legend=False, width=width)
    lines.update({str(z): (frame.index.values, frame[z].to_numpy(dtype=float)) for z in frame.columns},
                 title=f"{system.capitalize()}: {label}" + ("" if short else ", first week by district"))
    return lines.figure


def city_map_figure(city: xr.DataTree, systems, *, title: str = "Sensors by system", width: int = 360):
    """The districts (grey) and the sensors of every system in ``systems``, one colour each
    (click a legend entry to hide a system), as one Bokeh figure."""
    from bokeh.models import Legend, LegendItem

    from workbench.apps._figures import PALETTE

    polys = _data.zone_polygons(city)
    fw, fh = map_size(polys, width)
    m = ZoneMap(polys, frame_width=fw, frame_height=fh)
    m.colorbar.visible = False
    m.figure.title.text = title
    items = []
    for i, system in enumerate(systems):
        s = _data.sensor_table(city, system)
        r = m.figure.scatter(s["lon"].to_numpy(), s["lat"].to_numpy(), size=4, color=PALETTE[i % len(PALETTE)])
        items.append(LegendItem(label=system, renderers=[r]))
    legend = Legend(items=items, click_policy="hide", label_text_font_size="11px", spacing=0)
    m.figure.add_layout(legend, "right")
    return m.figure


def overview_figure(city: xr.DataTree, systems, *, days: int = 7, width: int = 1300):
    """The overview as one Bokeh layout: the map of every system's sensors beside a grid of
    each system's first ``days`` by district (two per row, one shared time axis and toolbar).

    Eight figures and one toolbar instead of a map and a week per system (fourteen figures,
    fourteen toolbars): the first render of the served overview drops from ~2.1 s to ~1.4 s.
    """
    from bokeh.layouts import gridplot, row

    # the map with its legend takes ~560 px; two week plots share the rest
    weeks = [week_figure(city, s, days=days, width=(width - 560) // 2, height=220, short=True) for s in systems]
    for f in weeks[1:]:
        f.x_range = weeks[0].x_range
    grid = gridplot(weeks, ncols=2, toolbar_location="above", merge_tools=True)
    return row(city_map_figure(city, systems), grid)
