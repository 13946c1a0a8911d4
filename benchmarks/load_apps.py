"""Load test of the served apps: N concurrent sessions per app on loopback.

For each app and N in (25, 50): open N server sessions at once with
``bokeh.client.pull_session`` (a real session: the server runs the notebook and builds the
document), report the session-open latency p50/p95 and the server's resident memory per extra
session (RSS after the N sessions minus before, over N), then close them. The server is
started with ``--warm`` (data cached once per process with ``pn.cache``).

Usage: ``python benchmarks/load_apps.py [--apps 01_perception ...] [--n 25 50]``;
results in ``benchmarks/results/apps_load.json``. Bounded and loopback only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import panel  # noqa: F401  (the client needs Panel's models registered)
from bokeh.client import pull_session

import _serve

APPS = ["01_perception", "02_analysis", "03_integration", "00_overview"]
OUT = Path(__file__).resolve().parent / "results" / "apps_load.json"


def open_one(url: str):
    t = time.perf_counter()
    try:
        session = pull_session(url=url)
    except OSError:  # the client gave up waiting (HTTP 599): counted as a failed session
        return None, None
    return time.perf_counter() - t, session


def run(url: str, proc, app: str, n: int) -> dict:
    server = _serve.server_process(proc)
    open_one(f"{url}/{app}")[1].close()  # this app warm in this process
    time.sleep(2)
    gc.collect()
    before = server.memory_info().rss
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(lambda _: open_one(f"{url}/{app}"), range(n)))
    wall = time.perf_counter() - t0
    time.sleep(1)
    after = server.memory_info().rss
    lat = np.array([r[0] for r in results if r[0] is not None] or [np.nan])
    failed = sum(r[0] is None for r in results)
    for _, s in results:
        if s is not None:
            s.close()
    return {"app": app, "n": n, "failed": failed, "p50_s": round(float(np.percentile(lat, 50)), 3),
            "p95_s": round(float(np.percentile(lat, 95)), 3), "max_s": round(float(lat.max()), 3),
            "wall_s": round(wall, 2), "rss_before_mb": round(before / 2**20, 1), "rss_after_mb": round(after / 2**20, 1),
            "mb_per_session": round((after - before) / 2**20 / n, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", nargs="*", default=APPS)
    ap.add_argument("--n", nargs="*", type=int, default=[25, 50])
    ap.add_argument("--pages", action="store_true",
                    help="serve the views alone (workbench/apps/pages/*.py) instead of the notebooks, "
                         "whose own cells may compute per session")
    args = ap.parse_args()
    if max(args.n) > 100:
        raise SystemExit("load_apps: keep N ≤ 100 (bounded load test).")
    pages = _serve.ROOT / "workbench" / "apps" / "pages"
    apps = [str(pages / f"{a}.py") for a in args.apps if (pages / f"{a}.py").exists()] if args.pages else []
    load_start = [round(x, 2) for x in os.getloadavg()]
    url, proc = _serve.start("--warm", *apps)
    rows = []
    try:
        for app in args.apps:
            for n in args.n:
                row = run(url, proc, app, n)
                print(json.dumps(row), flush=True)
                rows.append(row)
                time.sleep(3)
    finally:
        _serve.stop(proc)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    out = OUT.with_name("apps_load_pages.json") if args.pages else OUT
    out.write_text(json.dumps({"served": "views alone (workbench/apps/pages)" if args.pages else "notebooks",
                               "machine": platform.platform(), "cpus": os.cpu_count(), "dataset": "reference",
                               "mb_per_session_note": "RSS growth with the N sessions open, over N; only the first "
                                                       "row starts from a clean server (later rows reuse memory "
                                                       "freed by earlier sessions)",
                               "load_avg_start": load_start, "load_avg_end": [round(x, 2) for x in os.getloadavg()],
                               "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
