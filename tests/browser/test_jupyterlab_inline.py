"""A view rendered inline in JupyterLab: ``scripts/screenshots.py --only-lab`` starts
``jupyter lab`` on loopback with a token, runs a notebook whose cell shows ``AnalysisView``,
waits until BokehJS in the notebook holds the forecast title of the chosen district, and
writes the screenshot. It fails when the view does not draw inline."""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import CHROMIUM, ROOT

pytestmark = pytest.mark.browser


@pytest.mark.skipif(find_spec("jupyterlab") is None, reason="JupyterLab is not installed")
@pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed")
def test_a_view_renders_inline_in_jupyterlab(tmp_path: Path):
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"), "--only-lab", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    shot = tmp_path / "app_jupyterlab.png"
    assert shot.exists() and shot.stat().st_size > 20_000  # a drawn page, not a blank one
