"""Global options of the workbench, and the one place computations pick their scheduler.

:func:`set_options` works like :func:`xarray.set_options`: call it to change an option for
the session, or use it in a ``with`` block to change it for the block only.
:func:`get_options` returns the current values (read-only).

Options
-------
scheduler
    Where dask computations run. ``None`` (default): the local threaded scheduler, unless
    the environment names a cluster in ``DASK_SCHEDULER_ADDRESS``. ``"threads"``,
    ``"synchronous"`` (one thread, for debugging and tiny graphs) or ``"processes"``; a
    scheduler address such as ``"tcp://10.0.0.5:8786"`` (a :class:`distributed.Client` is
    connected on first use and reused); or a :class:`distributed.Client` you made.
progress
    Show a progress bar over the tasks of long computations (``False`` by default).

The pipeline and the CLI run every computation inside :func:`scheduler_context`, which also
switches on the xarray options the workbench relies on (:data:`XARRAY_OPTIONS`:
bottleneck and numbagg kernels — xarray leaves bottleneck off by default and its fallback
rolling median is two orders of magnitude slower; see ``PERFORMANCE.md``). Library functions
that build rolling or grouped computations wrap themselves in :func:`xarray_options` (or
the :func:`with_xarray_options` decorator), because xarray picks its kernels when the lazy
graph is built, not when it is computed.

Examples
--------
>>> import workbench
>>> workbench.get_options()["scheduler"] is None
True
>>> with workbench.set_options(scheduler="synchronous", progress=False):
...     workbench.get_options()["scheduler"]
'synchronous'
>>> from workbench._options import scheduler_context
>>> import dask.array as da
>>> with scheduler_context():
...     int(da.ones(10, chunks=5).sum().compute())
10
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import threading
from contextvars import ContextVar
from contextlib import ExitStack, contextmanager
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, TypeVar

__all__ = ["worker_environ", "in_process",
    "set_options",
    "get_options",
    "scheduler_context",
    "resolve_scheduler",
    "get_client",
    "xarray_options",
    "with_xarray_options",
    "XARRAY_OPTIONS",
    "SchedulerError",
]

#: the xarray options every workbench computation runs with (PERFORMANCE.md, pitfalls 1 and 3)
XARRAY_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"use_bottleneck": True, "use_numbagg": True, "use_flox": True}
)

_LOCAL = ("threads", "synchronous", "processes")
_ADDRESS_PREFIXES = ("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")
_ENV = "DASK_SCHEDULER_ADDRESS"

OPTIONS: dict[str, Any] = {"scheduler": None, "progress": False}

#: the scheduler of the innermost active scheduler_context (nested contexts inherit it)
_ACTIVE: ContextVar[Any] = ContextVar("workbench_active_scheduler", default=None)

_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()

F = TypeVar("F", bound=Callable[..., Any])


class SchedulerError(RuntimeError):
    """The chosen scheduler is not valid or cannot be reached."""


def _is_client(value: Any) -> bool:
    return type(value).__name__ == "Client" and hasattr(value, "get") and hasattr(value, "scheduler")


def _validate_scheduler(value: Any) -> None:
    if value is None or _is_client(value):
        return
    if isinstance(value, str):
        if value in _LOCAL or value == "threaded" or value.startswith(_ADDRESS_PREFIXES):
            return
    raise ValueError(
        f"scheduler={value!r} is not valid; expected None, 'threads', 'synchronous', "
        "'processes', a scheduler address such as 'tcp://HOST:8786', or a distributed.Client."
    )


def _validate_progress(value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"progress={value!r} is not valid; expected True or False.")


_VALIDATORS: dict[str, Callable[[Any], None]] = {
    "scheduler": _validate_scheduler,
    "progress": _validate_progress,
}


class set_options:  # noqa: N801 - named like xarray.set_options, used as a function
    """Set workbench options globally, or for a ``with`` block.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None`` (local threads, or ``DASK_SCHEDULER_ADDRESS`` when set), ``"threads"``,
        ``"synchronous"``, ``"processes"``, a scheduler address ``"tcp://HOST:PORT"``, or a
        Client.
    progress : bool
        Show progress bars over long computations.

    Examples
    --------
    >>> import workbench
    >>> with workbench.set_options(progress=True):
    ...     workbench.get_options()["progress"]
    True
    >>> workbench.get_options()["progress"]
    False
    """

    def __init__(self, **kwargs: Any):
        unknown = sorted(set(kwargs) - set(OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown workbench option(s) {', '.join(map(repr, unknown))}; "
                f"the options are {', '.join(sorted(OPTIONS))}."
            )
        for key, value in kwargs.items():
            _VALIDATORS[key](value)
        self._old = {key: OPTIONS[key] for key in kwargs}
        OPTIONS.update(kwargs)

    def __enter__(self) -> "set_options":
        return self

    def __exit__(self, *exc: object) -> None:
        OPTIONS.update(self._old)


def get_options() -> Mapping[str, Any]:
    """The current workbench options (a read-only mapping).

    Examples
    --------
    >>> import workbench
    >>> sorted(workbench.get_options())
    ['progress', 'scheduler']
    """
    return MappingProxyType(dict(OPTIONS))


def resolve_scheduler(scheduler: Any = None) -> Any:
    """The scheduler a computation will use.

    In order: the argument; the scheduler of an enclosing :func:`scheduler_context` (so a
    library sink called inside the pipeline runs where the pipeline runs); the ``scheduler``
    option; ``DASK_SCHEDULER_ADDRESS``; the local threaded scheduler.

    Returns ``"threads"``, ``"synchronous"``, ``"processes"``, an address string or a Client.
    """
    if scheduler is None and _ACTIVE.get() is not None:
        return _ACTIVE.get()
    value = scheduler if scheduler is not None else OPTIONS["scheduler"]
    if value is None:
        value = os.environ.get(_ENV) or None
        if value is None:
            import dask

            value = dask.config.get("scheduler-address", None) or None
        if value is None:
            return "threads"
    _validate_scheduler(value)
    return "threads" if value == "threaded" else value


def get_client(address: str, *, timeout: str = "10s") -> Any:
    """A :class:`distributed.Client` connected to ``address``, made once and reused.

    Raises
    ------
    SchedulerError
        When no scheduler answers at ``address``.
    """
    from distributed import Client

    with _CLIENTS_LOCK:
        client = _CLIENTS.get(address)
        if client is not None and client.status == "running":
            return client
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"cannot reach the dask scheduler at {address} within {timeout} "
                f"({type(exc).__name__}); start one with `workbench cluster` or check the address."
            ) from None
        _CLIENTS[address] = client
        return client


def _close_clients() -> None:
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - best effort at interpreter exit
                pass
        _CLIENTS.clear()


@contextmanager
def xarray_options() -> Iterator[None]:
    """Switch on :data:`XARRAY_OPTIONS` (bottleneck, numbagg, flox) inside the block.

    Examples
    --------
    >>> import xarray as xr
    >>> from workbench._options import xarray_options
    >>> with xr.set_options(use_bottleneck=False), xarray_options():
    ...     xr.get_options()["use_bottleneck"]
    True
    """
    import xarray as xr

    with xr.set_options(**XARRAY_OPTIONS):
        yield


def with_xarray_options(func: F) -> F:
    """Decorator: run ``func`` inside :func:`xarray_options`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with xarray_options():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def scheduler_context(
    scheduler: Any = None, *, progress: bool | None = None, desc: str = "computing"
) -> Iterator[Any]:
    """Run the dask computations of the block on the chosen scheduler.

    Parameters
    ----------
    scheduler
        Overrides the ``scheduler`` option for this block (same values).
    progress
        Overrides the ``progress`` option. On the local schedulers a tqdm bar counts tasks;
        on a cluster the dashboard link is printed instead.
    desc
        Label of the progress bar.

    Yields
    ------
    The resolved scheduler: ``"threads"``, ``"synchronous"``, ``"processes"`` or a Client.

    Examples
    --------
    >>> import dask.array as da
    >>> from workbench._options import scheduler_context
    >>> with scheduler_context("synchronous") as sched:
    ...     sched, int(da.arange(4, chunks=2).sum().compute())
    ('synchronous', 6)
    """
    import dask

    resolved = resolve_scheduler(scheduler)
    show = OPTIONS["progress"] if progress is None else progress
    with ExitStack() as stack:
        stack.enter_context(xarray_options())
        if isinstance(resolved, str) and resolved in _LOCAL:
            target: Any = resolved
            stack.enter_context(dask.config.set(scheduler=resolved))
            if resolved != "processes":  # fewer malloc arenas, freed memory back to the OS
                from workbench._memory import limit_arenas, trimming

                limit_arenas()
                stack.enter_context(trimming())
            if show:
                from workbench._progress import progress as _progress

                stack.enter_context(_progress(desc))
        else:
            target = get_client(resolved) if isinstance(resolved, str) else resolved
            # as_current() puts the string "dask.distributed" in the dask config, never the
            # Client itself: a nanny in this process pickles the config when it restarts a
            # worker, and a Client does not pickle.
            stack.enter_context(target.as_current())
            if show:
                link = getattr(target, "dashboard_link", None)
                print(f"{desc}: on {target.scheduler.address}" + (f", dashboard {link}" if link else ""),
                      file=sys.stderr)
        token = _ACTIVE.set(target)
        try:
            yield target
        finally:
            _ACTIVE.reset(token)


atexit.register(_close_clients)


def in_process() -> bool:
    """Whether computations run in this process's threads: no :func:`scheduler_context` is
    active, or it runs ``"threads"`` or ``"synchronous"`` (not processes or a cluster)."""
    active = _ACTIVE.get()
    return active is None or active in ("threads", "synchronous")


def worker_environ() -> dict:
    """distributed's worker-process environment (``distributed.nanny.pre-spawn-environ``)
    without ``MALLOC_TRIM_THRESHOLD_``: distributed sets it to 64 KiB, which also switches off
    glibc's adaptive mmap threshold, so every temporary over 128 KiB becomes a fresh mmap,
    page-faulted on each use. Measured (docs/scale.md): perception's kernels took ~1.8× their
    CPU time in worker processes (pipeline at 1,000 sensors × 1 y on 2 workers: 35.9 s with
    it, 22.3 s without). The cost: workers hand freed memory back to the OS less eagerly."""
    import dask
    import distributed  # noqa: F401 - its configuration defaults load on import

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env

