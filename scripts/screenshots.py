"""Screenshots of the served apps for the README and docs/apps.md (``make screenshots``).

Starts ``workbench serve --warm`` on a free loopback port, opens each app in Debian's
Chromium (the browser tests' harness), waits until BokehJS has drawn and the session is
idle, and writes ``docs/app_<name>.png`` (and ``docs/app_index.png``).

Usage: ``python scripts/screenshots.py [--out docs]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _serve  # noqa: E402

APPS = {"overview": "00_overview", "perception": "01_perception", "analysis": "02_analysis",
        "integration": "03_integration"}
READY = "() => window.Bokeh !== undefined && Bokeh.documents.length > 0 && Bokeh.documents[0].roots().length > 0"
IDLE = "() => Bokeh.documents[0].is_idle !== false"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs"))
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        print("screenshots: Debian's chromium is not installed (apt-get install chromium).", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    url, proc = _serve.start("--warm")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--disable-gpu", "--no-first-run",
                                                                        "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "/")
            page.screenshot(path=str(out / "app_index.png"))
            for name, app in APPS.items():
                page.goto(f"{url}/{app}?zone=Z03" if name != "overview" else f"{url}/{app}", timeout=180_000)
                page.wait_for_function(READY, timeout=180_000)
                page.wait_for_function(IDLE, timeout=180_000)
                page.wait_for_timeout(1500)  # let the last canvases paint
                page.screenshot(path=str(out / f"app_{name}.png"), full_page=name != "overview")
                print(f"wrote {out / f'app_{name}.png'}")
            browser.close()
    finally:
        _serve.stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
