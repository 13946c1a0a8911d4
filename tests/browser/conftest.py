"""Fixtures of the browser tests: Debian's Chromium driven by pytest-playwright, and
``workbench serve`` started on a free loopback port (waiting on ``/liveness``).

Playwright cannot download its own browser here; Debian's ``chromium`` is used through
``executable_path``. Without it the tests skip with a reason (``make test`` installs it
when run as root on Debian).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
START_TIMEOUT = 240  # seconds: --warm computes every stage once before answering


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; `make test` does it as root)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_live(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"workbench serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/liveness", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"workbench serve did not answer /liveness in {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


def start_server(tmp: Path, *args: str, env: dict | None = None):
    """Start ``workbench serve`` on a free port; returns ``(url, process)``."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "workbench.cli", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        _wait_live(url, proc, log)
    except Exception:
        stop_server(proc)
        raise
    return url, proc


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # our own session: the wrapper and its panel child
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The four apps and the index, as ``make serve`` serves them (warmed)."""
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    url, proc = start_server(tmp_path_factory.mktemp("serve"), "--warm", "--max-upload-mb", "1")
    yield url
    stop_server(proc)


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    """One app behind basic auth (user ``analyst``, password ``correct-horse``)."""
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    page = ROOT / "workbench" / "apps" / "pages" / "01_perception.py"
    url, proc = start_server(tmp_path_factory.mktemp("auth"), str(page), "--basic-auth", "analyst:correct-horse",
                             env={"WORKBENCH_COOKIE_SECRET": "test-secret-0123456789abcdef"})
    yield url
    stop_server(proc)
