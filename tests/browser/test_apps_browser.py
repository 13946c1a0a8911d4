"""What a person sees: the served apps in Chromium (pytest-playwright, Debian's chromium).

Assertions read what BokehJS draws (plot titles, the curves' data) and wait on it; no sleeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from _pw import open_app, titles, wait_idle, wait_title

pytestmark = pytest.mark.browser

APPS = ["00_overview", "01_perception", "02_analysis", "03_integration"]
FIXTURE = Path(__file__).resolve().parents[2] / "datasets" / "fixtures" / "longform.csv"

# every drawn time-series curve (the series panel: one MultiLine, one line per label) as [t0, t1]
JS_CURVES = """() => { const out = [];
  for (const m of Bokeh.documents[0].all_models) {
    if (m.type === "GlyphRenderer" && m.glyph.type === "MultiLine" && m.visible) {
      const d = m.data_source.data; if (d.label === undefined || !m.data_source.data.xs.length) continue;
      for (const xs of d.xs) { if (xs.length) out.push([Math.min(...xs), Math.max(...xs)]); }
    } }
  return out; }"""
JS_SERIES_LABELS = """() => { for (const m of Bokeh.documents[0].all_models) {
    if (m.type === "GlyphRenderer" && m.glyph.type === "MultiLine" && m.data_source.data.label !== undefined
        && m.data_source.data.xs.some(x => x.length && x[0] > 1e12)) return [...m.data_source.data.label]; }
  return []; }"""


def select(page, label: str, option_label: str) -> None:
    """Choose ``option_label`` in the select box titled ``label`` (as a person would)."""
    box = page.locator(".bk-input-group", has=page.locator(f"label:text-is('{label}')")).locator("select")
    box.select_option(label=option_label)


def test_index_lists_apps_and_datasets(page, server):
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server + "/")
    links = page.locator("a.app-link")
    assert links.count() == 4
    assert page.locator("#dataset option").count() >= 2
    page.locator("#dataset").select_option("reference-quiet")
    assert "dataset=reference-quiet" in links.first.get_attribute("href")
    assert errors == []


@pytest.mark.parametrize("app", APPS)
def test_every_page_loads_without_console_errors(page, server, app):
    errors: list[str] = []
    open_app(page, f"{server}/{app}", errors, timeout=120_000)
    assert titles(page), "no plot drawn"
    assert errors == []


JS_LEGEND = """() => { const out = []; for (const m of Bokeh.documents[0].all_models)
  { if (m.type === "LegendItem") { const l = m.label; out.push(typeof l === "string" ? l : l.value); } }
  return out; }"""


def test_overview_shows_every_system(page, server):
    from workbench.registry import SYSTEMS

    open_app(page, f"{server}/00_overview")
    drawn = titles(page)
    for system in SYSTEMS:  # a week plot per system, and the system's sensors in the map legend
        assert any(t.startswith(f"{system.capitalize()}: ") for t in drawn), system
    assert sorted(page.evaluate(JS_LEGEND)) == sorted(SYSTEMS)
    assert len(page.evaluate(JS_CURVES)) >= 12 * len(SYSTEMS)  # one line per district per system


def test_zone_choice_filters_the_series(page, server):
    open_app(page, f"{server}/01_perception")
    assert any("all zones" in t for t in titles(page))
    zones = page.evaluate(JS_SERIES_LABELS)
    assert "Z03" in zones  # one curve per district
    select(page, "Zone", "Z03 · Riverside")
    wait_title(page, "Z03 · Riverside")
    wait_idle(page)
    sensors = page.evaluate(JS_SERIES_LABELS)
    assert 0 < len(sensors) < len(zones) and not set(sensors) & set(zones)  # the zone's own sensors


def test_system_choice_updates_every_plot(page, server):
    open_app(page, f"{server}/01_perception")
    before = titles(page)
    select(page, "System", "water")
    after = wait_title(page, "Every water sensor")  # the raster of every sensor
    after = wait_title(page, "Water ")                # the series of the zone (water flow or pressure)
    assert any(t.startswith("Every water sensor") for t in after)
    assert before != after


def test_tap_on_a_district_selects_it(page, server):
    open_app(page, f"{server}/01_perception")
    # tap = BokehJS sets the polygons' selection, exactly as the tap tool does
    glyph = page.evaluate("""() => { for (const m of Bokeh.documents[0].all_models) {
        if (m.type === "GlyphRenderer" && ["Patches", "MultiPolygons"].includes(m.glyph.type)
            && m.data_source.data.zone) { m.data_source.selected.indices = [1]; return m.glyph.type; } } }""")
    assert glyph, "no district polygons drawn"
    after = wait_title(page, "Z02")
    assert any("Z02" in t for t in after)
    zone_select = page.locator(".bk-input-group", has=page.locator("label:text-is('Zone')")).locator("select")
    assert zone_select.input_value().startswith("Z02")  # the select box follows the map


def test_time_window_drives_the_series(page, server):
    open_app(page, f"{server}/01_perception")
    full = page.evaluate(JS_CURVES)
    span = max(hi for _, hi in full) - min(lo for lo, _ in full)
    page.evaluate("""() => { for (const m of Bokeh.documents[0].all_models) {
        if (m.type === "DatetimeRangeSlider") { const [lo, hi] = m.value;
          m.value = [lo, lo + 7 * 24 * 3600 * 1000]; return; } } }""")
    page.wait_for_function(f"""() => {{ const c = ({JS_CURVES})(); if (!c.length) return false;
        return Math.max(...c.map(x => x[1])) - Math.min(...c.map(x => x[0])) < {span} / 2; }}""", timeout=30_000)


def test_uploaded_feed_shows_its_ingest_report(page, server):
    open_app(page, f"{server}/01_perception")
    page.get_by_text("Check a feed").click()
    page.locator("input[type=file]").set_input_files(str(FIXTURE))
    report = page.get_by_text("Ingest report")
    report.wait_for(timeout=30_000)
    assert page.get_by_text("unknown_variable").count() + page.get_by_text("quarantined").count() > 0


def test_oversized_upload_is_refused_on_the_server(page, server, tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"sensor,time,variable,value,unit\n" + b"S1,2024-07-01T00:00:00Z,electric_load,1,kW\n" * 30_000)
    assert big.stat().st_size > 1024 * 1024  # the test server's limit is 1 MB
    open_app(page, f"{server}/01_perception")
    page.get_by_text("Check a feed").click()
    page.locator("input[type=file]").set_input_files(str(big))
    page.get_by_text("over the server's upload limit").wait_for(timeout=30_000)


def test_login_guards_the_apps(page, auth_server):
    page.goto(f"{auth_server}/01_perception")
    assert "/login" in page.url
    page.fill("input[name=username]", "analyst")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    page.get_by_text("Invalid username or password").wait_for(timeout=10_000)
    assert "/login" in page.url
    assert page.evaluate("() => window.Bokeh === undefined")


def test_login_with_the_right_password_opens_the_app(page, auth_server):
    page.goto(f"{auth_server}/01_perception")
    page.fill("input[name=username]", "analyst")
    page.fill("input[name=password]", "correct-horse")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url
    open_app(page, f"{auth_server}/01_perception", timeout=120_000)  # the session cookie now opens it
    assert titles(page)


def test_analysis_zone_choice_draws_its_forecast_and_profile(page, server):
    open_app(page, f"{server}/02_analysis", timeout=120_000)
    assert any(t.startswith("Choose a district") for t in titles(page))
    select(page, "Zone", "Z05 · Market")
    wait_title(page, "One day ahead — Z05")
    wait_idle(page)
    drawn = page.evaluate("""() => { const out = {band: 0, thick: []};
      for (const m of Bokeh.documents[0].all_models) {
        if (m.type === "GlyphRenderer" && m.glyph.type === "VArea") out.band += m.data_source.data.x.length;
        if (m.type === "GlyphRenderer" && m.glyph.type === "MultiLine" && m.data_source.data.width !== undefined) {
          const d = m.data_source.data; d.label.forEach((l, i) => { if (d.width[i] > 2) out.thick.push(l); }); } }
      return out; }""")
    assert drawn["band"] > 0            # the forecast's interval is drawn
    assert "Z05" in drawn["thick"]      # the profile draws the chosen district thick
