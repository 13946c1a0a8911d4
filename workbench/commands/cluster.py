"""``workbench cluster``: start a local dask.distributed cluster with worker processes.

For people who want the dask dashboard, or to try the distributed code path on one machine.
It prints the scheduler address to pass to ``workbench run --scheduler``, to
``DASK_SCHEDULER_ADDRESS`` or to ``workbench.set_options(scheduler=...)``, and runs until
Ctrl-C. The scheduler and the dashboard listen on 127.0.0.1 unless told otherwise: dask's
dashboard has no authentication (``SERVING.md``).

Examples
--------
::

    $ workbench cluster --workers 2 --memory-limit 4GiB
    scheduler: tcp://127.0.0.1:8786
    dashboard: http://127.0.0.1:8787/status
    $ workbench run --scheduler tcp://127.0.0.1:8786 ...   # in another shell
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

__all__ = ["register", "start_cluster", "main"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cluster",
        help="start a local dask.distributed cluster (worker processes + dashboard)",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--workers", type=int, default=2, metavar="N", help="worker processes (default 2)")
    p.add_argument("--threads-per-worker", type=int, default=1, metavar="N", help="threads in each worker (default 1)")
    p.add_argument("--memory-limit", default="4GiB", metavar="SIZE",
                   help="memory limit per worker, e.g. 4GiB; workers spill, pause, then restart past it (default 4GiB)")
    p.add_argument("--host", default="127.0.0.1", help="interface the scheduler listens on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8786, help="scheduler port (default 8786; 0 picks a free one)")
    p.add_argument("--dashboard-address", default="127.0.0.1:8787", metavar="HOST:PORT",
                   help="where the dashboard listens (default 127.0.0.1:8787; it has no authentication)")
    p.set_defaults(func=main)


def start_cluster(
    *,
    workers: int = 2,
    threads_per_worker: int = 1,
    memory_limit: str = "4GiB",
    host: str = "127.0.0.1",
    port: int = 8786,
    dashboard_address: str = "127.0.0.1:8787",
) -> Any:
    """Start a :class:`distributed.LocalCluster` with ``workers`` worker processes (their
    environment: :func:`workbench._options.worker_environ`)."""
    import dask
    from distributed import LocalCluster

    from workbench._options import worker_environ

    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            memory_limit=memory_limit,
            host=host,
            scheduler_port=port,
            dashboard_address=dashboard_address,
        )


def main(args: argparse.Namespace) -> int:
    if args.workers < 1 or args.threads_per_worker < 1:
        print("workbench cluster: --workers and --threads-per-worker must be at least 1.", file=sys.stderr)
        return 2
    try:
        cluster = start_cluster(
            workers=args.workers, threads_per_worker=args.threads_per_worker,
            memory_limit=args.memory_limit, host=args.host, port=args.port,
            dashboard_address=args.dashboard_address,
        )
    except OSError as exc:
        print(f"workbench cluster: cannot listen on {args.host}:{args.port} ({exc}); "
              "pick another --port (0 for a free one).", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"workbench cluster: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"scheduler: {cluster.scheduler_address}", flush=True)
        print(f"dashboard: {cluster.dashboard_link}", flush=True)
        print(f"workers:   {args.workers} processes × {args.threads_per_worker} thread(s), "
              f"memory limit {args.memory_limit} each", flush=True)
        print(f"use it:    workbench run --scheduler {cluster.scheduler_address}   "
              f"(or DASK_SCHEDULER_ADDRESS={cluster.scheduler_address})", flush=True)
        print("Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("stopping the cluster…", file=sys.stderr, flush=True)
        cluster.close()
    return 0
