"""Start and stop ``workbench serve`` for the app benchmarks (free loopback port, own session)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args: str, timeout: float = 600) -> tuple[str, subprocess.Popen]:
    port = free_port()
    log = open(ROOT / "benchmarks" / "results" / f".serve-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--port", str(port), *args],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"workbench serve exited with {proc.returncode} (see {log.name})")
        try:
            with urllib.request.urlopen(url + "/liveness", timeout=2):
                return url, proc
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise RuntimeError("workbench serve did not start")


def server_process(proc: subprocess.Popen):
    """The ``panel serve`` child of the wrapper (the process whose memory is measured)."""
    import psutil

    kids = psutil.Process(proc.pid).children(recursive=True)
    return next(k for k in kids if "panel" in " ".join(k.cmdline()))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
