"""Interaction latency of the served apps in Chromium, beside a trivial app (the floor).

For the perception and analysis apps (and a trivial Panel app with one select and one small plot, measured
in the same run as the framework floor): choose a zone in the Zone select box, as a person
would, and time until BokehJS has drawn the new plot title on the next animation frame
(Playwright polls on ``requestAnimationFrame``). Also times a system change and the first
render of each app after ``--warm`` (median of ``--first-repeats`` fresh sessions; the trivial
app's first render is the floor). Results in ``benchmarks/results/apps_latency.json``.

Usage: ``python benchmarks/latency_apps.py [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

import _serve

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "apps_latency.json"
APPS = ["00_overview", "01_perception", "02_analysis", "03_integration", "_trivial_app"]
READY = "() => window.Bokeh !== undefined && Bokeh.documents.length > 0 && Bokeh.documents[0].roots().length > 0"
IDLE = "() => Bokeh.documents[0].is_idle !== false"
HAS_TITLE = """(needle) => { for (const m of Bokeh.documents[0].all_models)
  { if (m.type === "Title" && m.text && m.text.includes(needle)) return true; } return false; }"""
ZONES = [f"Z{i:02d}" for i in range(1, 13)]


def select(page, box: str, **option) -> None:
    page.locator(".bk-input-group", has=page.locator(f"label:text-is('{box}')")).locator("select").select_option(**option)


def timed_change(page, box: str, needle: str, **option) -> float:
    t0 = time.perf_counter()
    select(page, box, **option)
    page.wait_for_function(HAS_TITLE, arg=needle, timeout=60_000, polling="raf")
    page.wait_for_function(IDLE, timeout=60_000, polling="raf")
    return time.perf_counter() - t0


def stats(xs) -> dict:
    a = np.asarray(xs) * 1000
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50))), "p90_ms": round(float(np.percentile(a, 90))),
            "min_ms": round(float(a.min())), "max_ms": round(float(a.max()))}


def interactions(page, url: str, result: dict, repeats: int) -> None:
    """Zone changes (trivial app, perception, analysis) and system changes (perception), timed."""
    for name, app in (("floor", "_trivial_app"), ("perception", "01_perception")):
        page.goto(f"{url}/{app}")
        page.wait_for_function(READY, timeout=120_000)
        page.wait_for_function(IDLE, timeout=120_000)
        lat = []
        for i in range(repeats):
            z = ZONES[i % len(ZONES)]
            label = z if name == "floor" else next(
                o for o in page.locator(".bk-input-group", has=page.locator("label:text-is('Zone')"))
                .locator("option").all_inner_texts() if o.startswith(z))
            lat.append(timed_change(page, "Zone", z, label=label))
        result[f"zone_change_{name}"] = stats(lat)
        print(name, result[f"zone_change_{name}"], flush=True)
    lat = []
    for i in range(max(4, repeats // 2)):
        system = ("water", "energy")[i % 2]
        lat.append(timed_change(page, "System", f"Every {system} sensor", label=system))
    result["system_change_perception"] = stats(lat)
    print("system", result["system_change_perception"], flush=True)
    page.goto(f"{url}/02_analysis")
    page.wait_for_function(READY, timeout=120_000)
    page.wait_for_function(IDLE, timeout=120_000)
    options = page.locator(".bk-input-group", has=page.locator("label:text-is('Zone')")).locator("option")
    labels = options.all_inner_texts()[1:]
    lat = [timed_change(page, "Zone", f"One day ahead — {labels[i % len(labels)].split(' ')[0]}",
                        label=labels[i % len(labels)]) for i in range(repeats)]
    result["zone_change_analysis"] = stats(lat)
    print("analysis", result["zone_change_analysis"], flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--first-render", nargs="*", default=APPS, help="apps whose first render is timed")
    ap.add_argument("--first-repeats", type=int, default=5, help="page loads timed per app (median reported)")
    ap.add_argument("--notebooks", action="store_true",
                    help="serve the notebooks 00-03 (as `make serve` does) and time only their first render "
                         "(→ apps_latency_notebooks.json)")
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        raise SystemExit("latency_apps: Debian's chromium is not installed (apt-get install chromium).")
    # the views alone (workbench/apps/pages): the notebooks' own cells may compute per session
    apps = ([str(_serve.ROOT / "notebooks" / f"{a}.ipynb") for a in APPS[1:4]] if args.notebooks else
            [str(_serve.ROOT / "workbench" / "apps" / "pages" / f"{a}.py") for a in APPS[1:4]])
    url, proc = _serve.start("--warm", str(_serve.ROOT / "notebooks" / "00_overview.ipynb"), *apps,
                             str(HERE / "_trivial_app.py"))
    served = "notebooks 00-03" if args.notebooks else "00_overview notebook + views alone (workbench/apps/pages)"
    result = {"served": f"{served}, --warm",
              "machine": platform.platform(), "cpus": os.cpu_count(), "dataset": "reference", "repeats": args.repeats,
              "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--disable-gpu", "--disable-background-networking",
                                                                        "--disable-component-update", "--no-first-run", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            first, samples = {}, {}
            for app in args.first_render:
                try:
                    page.goto(f"{url}/{app}", timeout=180_000)  # once to warm the browser cache of static files
                    page.wait_for_function(READY, timeout=180_000)
                    took = []
                    for _ in range(args.first_repeats):
                        t0 = time.perf_counter()
                        page.goto(f"{url}/{app}", timeout=180_000)
                        page.wait_for_function(READY, timeout=180_000, polling=100)
                        page.wait_for_function(IDLE, timeout=180_000, polling=100)
                        took.append(round(time.perf_counter() - t0, 2))
                    first[app] = float(np.median(took))
                    samples[app] = took
                except Exception as exc:  # a timeout: recorded, the other measurements go on
                    first[app] = f"failed: {type(exc).__name__}"
                print(app, first[app], flush=True)
            result["first_render_s"] = first  # median of the samples
            result["first_render_samples_s"] = samples
            if not args.notebooks:
                interactions(page, url, result, args.repeats)
            browser.close()
    finally:
        _serve.stop(proc)
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    (OUT.with_name("apps_latency_notebooks.json") if args.notebooks else OUT).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
