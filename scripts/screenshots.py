"""Screenshots of the served apps for the README and docs/apps.md (``make screenshots``).

Starts ``workbench serve --warm`` on a free loopback port, opens each app in Debian's
Chromium (the browser tests' harness), waits until BokehJS has drawn and the session is
idle, and writes ``docs/app_<name>.png`` (and ``docs/app_index.png``). When JupyterLab is
installed it also starts ``jupyter lab`` on loopback with a random token, runs a notebook
whose cell shows a view inline, and writes ``docs/app_jupyterlab.png``.

Usage: ``python scripts/screenshots.py [--out docs] [--only-lab | --no-lab]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.util import find_spec
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _serve  # noqa: E402

APPS = {"overview": "00_overview", "perception": "01_perception", "analysis": "02_analysis",
        "integration": "03_integration"}
READY = "() => window.Bokeh !== undefined && Bokeh.documents.length > 0 && Bokeh.documents[0].roots().length > 0"
IDLE = "() => Bokeh.documents[0].is_idle !== false"
#: the notebook JupyterLab runs: a view shown inline by the last cell
LAB_CELLS = ["import panel as pn\n\nfrom workbench.apps import AnalysisView, CityState\n\npn.extension(inline=True)  # BokehJS and Panel's JS from the installed packages (offline)",
             'AnalysisView(state=CityState(system="energy", zone="Z03"))']
LAB_DRAWN = """(needle) => window.Bokeh !== undefined && Bokeh.documents.some(d => [...d.all_models].some(
  m => m.type === "Title" && m.text && m.text.includes(needle)))"""
#: JupyterLab settings for a clean picture: no news or update notifications
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False}}


def _lab(folder: Path) -> tuple[str, subprocess.Popen]:
    """Start ``jupyter lab`` in ``folder`` on loopback with a random token; returns its URL."""
    token, port = secrets.token_hex(16), _serve.free_port()
    for name, value in LAB_SETTINGS.items():
        path = folder / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"), "JUPYTER_RUNTIME_DIR": str(folder / "runtime")}
    log = open(folder / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
                             *(["--allow-root"] if os.geteuid() == 0 else [])],
                            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode} (see {log.name})")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return f"{url}/lab/tree/inline_view.ipynb?token={token}", proc
        except OSError:
            time.sleep(0.5)
    _serve.stop(proc)
    raise RuntimeError("jupyter lab did not start")


def jupyterlab(browser, out: Path) -> Path:
    """Run a notebook cell showing a view in JupyterLab and screenshot it."""
    import nbformat

    folder = Path(tempfile.mkdtemp(prefix="workbench-lab-"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in LAB_CELLS], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    nbformat.write(nb, folder / "inline_view.ipynb")
    try:
        url, proc = _lab(folder)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1250})
        page.goto(url, timeout=120_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=120_000)
        page.wait_for_function("() => [...document.querySelectorAll('.jp-Spinner')].every(e => e.offsetParent === null)",
                               timeout=120_000)  # the notebook has loaded
        try:
            page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=5_000)  # e.g. a kernel choice
        except Exception:  # no dialog
            pass
        if page.locator(".jp-Dialog").count():
            raise RuntimeError("JupyterLab shows a dialog: " + page.locator(".jp-Dialog").first.inner_text()[:500])
        page.locator(".jp-Notebook .jp-Cell").first.click()
        for _ in LAB_CELLS:
            page.keyboard.press("Shift+Enter")
        page.wait_for_function(LAB_DRAWN, arg="One day ahead — Z03", timeout=300_000, polling=500)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=300_000)
        page.wait_for_timeout(1500)  # let the last canvases paint
        path = out / "app_jupyterlab.png"
        page.screenshot(path=str(path))
        page.close()
        return path
    except Exception:
        failed = Path(tempfile.gettempdir()) / "workbench-lab-failed.png"
        page.screenshot(path=str(failed))
        print(f"screenshots: JupyterLab as it was when this failed: {failed}", file=sys.stderr)
        raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs"))
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--only-lab", action="store_true", help="only the JupyterLab screenshot")
    which.add_argument("--no-lab", action="store_true", help="no JupyterLab screenshot")
    args = ap.parse_args()
    lab = not args.no_lab and find_spec("jupyterlab") is not None
    if not lab and not args.no_lab:
        print("screenshots: JupyterLab is not installed; no app_jupyterlab.png.", file=sys.stderr)
    chromium = shutil.which("chromium")
    if not chromium:
        print("screenshots: Debian's chromium is not installed (apt-get install chromium).", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--disable-gpu", "--no-first-run",
                                                                    "--disable-background-networking"])
        if lab:
            print(f"wrote {jupyterlab(browser, out)}")
        if not args.only_lab:
            apps(browser, out)
        browser.close()
    return 0


def apps(browser, out: Path) -> None:
    """Screenshots of the index and of each served app."""
    url, proc = _serve.start("--warm")
    try:
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
    finally:
        _serve.stop(proc)


if __name__ == "__main__":
    sys.exit(main())
