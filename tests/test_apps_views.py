"""The Panel views, tested by setting parameters and asserting on state (no browser)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pn = pytest.importorskip("panel")

from workbench.apps import _data  # noqa: E402
from workbench.apps.upload import UploadError, check_upload, ingest_bytes  # noqa: E402


@pytest.fixture(scope="module")
def state():
    from workbench.apps import CityState

    return CityState(dataset="reference", system="energy")


def test_minmax_keeps_extremes_and_bounds_points():
    t = pd.date_range("2026-01-01", periods=10_000, freq="15min")
    v = np.sin(np.arange(10_000) / 50.0)
    v[4321] = 50.0  # a spike must survive
    v[7000:7100] = np.nan  # a gap must stay visible
    out = _data.minmax(pd.DataFrame({"a": v}, index=t), n_bins=200)
    x, y = out["a"]
    assert len(y) <= 400 and np.nanmax(y) == 50.0 and np.isnan(y).any()
    assert (np.diff(x.astype("int64")) >= 0).all()


def test_short_series_pass_whole():
    t = pd.date_range("2026-01-01", periods=10, freq="h")
    out = _data.minmax(pd.DataFrame({"a": np.arange(10.0)}, index=t), n_bins=200)
    assert len(out["a"][1]) == 10


def test_state_follows_system_and_dataset(state):
    state.system = "water"
    assert state.variable in ("water_flow", "water_pressure")
    state.zone = "Z03"
    assert state.zone_label().startswith("Z03")
    lo, hi = state.window
    assert hi - lo > pd.Timedelta(days=20)
    with pytest.raises(ValueError):
        state.zone = "nowhere"
    state.system, state.zone = "energy", _data.ALL


def test_zone_frame_aggregates_as_the_registry_says(state):
    city = state.city
    frame = _data.zone_frame(city, "energy", "electric_load")
    raw = _data.sensor_frame(city, "energy", "electric_load", zone="Z01")
    assert set(frame.columns) == set(_data.zone_table(city)["zone"])
    np.testing.assert_allclose(frame["Z01"].to_numpy(), raw.sum(axis=1, min_count=1).to_numpy())


def test_zone_choice_drives_the_series_title(state):
    from workbench.apps import PerceptionView

    view = PerceptionView(state=state)
    view.__panel__()
    figure, source = view.series.figure, view.series.source
    assert "all zones" in figure.title.text
    assert sorted(source.data["label"]) == sorted(_data.zone_table(state.city)["zone"])
    state.zone = "Z02"
    assert "Z02" in figure.title.text
    sensors = _data.sensor_table(state.city, state.system)
    assert sorted(source.data["label"]) == sorted(sensors.loc[sensors["zone"] == "Z02", "sensor"])
    assert view.map.outline.data["xs"] and view.map.source.selected.indices == [1]  # outlined and selected
    state.zone = _data.ALL


def test_series_are_downsampled_before_the_browser(state):
    from workbench.apps import PerceptionView, data

    view = PerceptionView(state=state)
    n_time = state.city[state.system].sizes["time"]
    assert n_time > 2 * data.N_BINS  # the reference month is long enough to be cut
    assert all(len(x) <= 2 * data.N_BINS for x in view.series.source.data["xs"])
    image = view.matrix.source.data["image"][0]
    assert image.shape[1] <= data.RASTER_COLUMNS < n_time


def test_zone_change_updates_the_figures_in_place(state):
    from workbench.apps import AnalysisView

    view = AnalysisView(state=state)
    figures = (view.series.figure, view.profile.figure, view.forecast.figure, view.map.figure)
    renderers = [list(f.renderers) for f in figures]
    state.zone = "Z04"
    assert "Z04" in view.forecast.figure.title.text and len(view.forecast.band.data["x"]) > 0
    assert max(view.profile.source.data["width"]) > min(view.profile.source.data["width"])  # Z04 drawn thick
    assert [list(f.renderers) for f in figures] == renderers  # same glyphs, new data
    assert (view.series.figure, view.profile.figure, view.forecast.figure, view.map.figure) == figures
    state.zone = _data.ALL


def test_tap_on_a_district_sets_the_zone(state):
    from workbench.apps import AnalysisView

    view = AnalysisView(state=state)
    view.map.source.selected.indices = [2]  # what the tap tool does
    assert state.zone == _data.zone_polygons(state.city)[2]["zone"]
    view.map.source.selected.indices = []
    assert state.zone == _data.ALL


def test_a_failing_panel_shows_one_readable_message(state):
    from workbench.apps import PerceptionView

    view = PerceptionView(state=state)

    def broken():
        raise KeyError("electric_load")

    view.parts = lambda: [(broken, {"zone"})]
    view.refresh()
    assert view.alert.visible and "KeyError" in view.alert.object


def test_upload_checks_size_and_type_on_the_server():
    assert check_upload("../../etc/feed.csv", 10, limit=100) == "feed.csv"
    with pytest.raises(UploadError, match="upload limit"):
        check_upload("feed.csv", 101, limit=100)
    with pytest.raises(UploadError, match="not a feed format"):
        check_upload("payload.exe", 10, limit=100)


def test_upload_is_read_with_its_report():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "datasets" / "fixtures" / "longform.csv"
    cube, report = ingest_bytes(path.read_bytes(), path.name)
    assert report.n_in == report.n_accepted + report.n_quarantined
    assert len(report.quarantined) == report.n_quarantined


def test_warm_fills_the_caches_a_zone_change_reads(state):
    from workbench.apps import data, stages

    took = stages.warm("reference")
    assert set(took) >= {"energy", "water"}
    curves = data.zone_series("reference", "water", "water_flow", data.key(state.window))
    assert set(curves) >= {_data.ALL, "Z01"} and curves["Z01"]  # every zone, ready for a lookup


def test_overview_is_one_layout_with_every_system():
    from bokeh.models import LegendItem
    from bokeh.plotting import figure

    from workbench import registry
    from workbench.apps import data, plots

    layout = plots.overview_figure(data.city("reference"), registry.SYSTEMS)
    figs = list(layout.select({"type": figure}))
    assert len(figs) == 1 + len(registry.SYSTEMS)  # one map, one week per system
    assert sorted(i.label.value for i in layout.select({"type": LegendItem})) == sorted(registry.SYSTEMS)
    weeks = [f for f in figs if f.title.text.split(":")[0].lower() in registry.SYSTEMS]
    assert len(weeks) == len(registry.SYSTEMS) and len({id(f.x_range) for f in weeks}) == 1  # one time axis
