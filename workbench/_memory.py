"""Hand freed memory back to the operating system while dask computes (glibc only).

glibc keeps the memory that dask's tasks free in its per-thread arenas: measured at 1,000
sensors × 1 year, the pipeline's process held 820 MB more than before its compute once the
compute was over, while its products weighed 182 MB. ``malloc_trim(0)`` returns those free
pages. Trimming on every free (distributed's ``MALLOC_TRIM_THRESHOLD_``) makes every
temporary a fresh, page-faulted mapping (1.8× the CPU of perception's kernels, docs/scale.md);
trimming at most once a second while tasks finish costs ~2 ms a call and keeps the resident
set near what is alive; sooner (at most every 0.1 s) when the resident set has grown by
64 MB since the last trim, which took ~25 MB off the 1,000-sensor year's peak at no CPU
cost (trimming every 0.1 s regardless cost +6 % CPU). On other C libraries
:func:`trimming` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from dask.callbacks import Callback

__all__ = ["trim", "trimming", "limit_arenas"]

_LIBC = None
if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
    try:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        _LIBC.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):
        _LIBC = None


#: malloc arenas of a workbench process (:func:`limit_arenas`)
ARENAS = 2
#: allocations of at least this many bytes get their own mapping, unmapped when freed
MMAP_THRESHOLD = 2**24
_M_ARENA_MAX = -8  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_ARENAS: int | None = None


def limit_arenas(arenas: int = ARENAS, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """At most ``arenas`` glibc malloc arenas for this process's threads, and a fixed mmap
    threshold of ``mmap_threshold`` bytes (whether it could; glibc only).

    glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB): after
    the first 20 MB input chunk is freed, every block below that size comes from an arena and
    stays resident until a trim. Fixed at 16 MiB, the input chunks and larger temporaries are
    unmapped when freed; much lower thresholds page-fault every temporary (CPU +20 % at 2 MiB,
    docs/scale.md). Call before the threads that allocate start: a thread keeps the arena it
    first got. Later calls do nothing (the first settings stay)."""
    global _ARENAS
    if _LIBC is None:
        return False
    if _ARENAS is None:
        if not _LIBC.mallopt(_M_ARENA_MAX, int(arenas)):
            return False
        if mmap_threshold and not _LIBC.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)):
            return False
        _ARENAS = int(arenas)
    return True


def trim() -> bool:
    """Return the C heap's free pages to the operating system; whether it could (glibc)."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True


#: a trim comes sooner than its interval when the resident set grew this much since the last one
GROWTH_BYTES = 64 * 2**20
#: but never sooner than this many seconds after the last one
MIN_INTERVAL = 0.1
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """This process's resident set (Linux; 0 where ``/proc`` is absent)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return 0


class _Trim(Callback):
    def __init__(self, interval: float, growth: int = GROWTH_BYTES, min_interval: float = MIN_INTERVAL):
        super().__init__()
        self.interval, self.growth, self.min_interval = interval, growth, min_interval
        self.last = time.monotonic()
        self.after = resident_bytes()  # the resident set just after the last trim
        self.calls = 0
        self._lock = threading.Lock()

    def _due(self, now: float) -> bool:
        since = now - self.last
        return since >= self.interval or (since >= self.min_interval and resident_bytes() > self.after + self.growth)

    def _posttask(self, key, result, dsk, state, worker_id):
        now = time.monotonic()
        if self._due(now) and self._lock.acquire(blocking=False):
            try:
                self.last = now
                self.calls += trim()
                self.after = resident_bytes()
            finally:
                self._lock.release()

    def _finish(self, dsk, state, errored):
        self.calls += trim()


@contextmanager
def trimming(interval: float = 1.0) -> Iterator[_Trim | None]:
    """Trim the C heap every ``interval`` seconds while local dask tasks finish (sooner after
    :data:`GROWTH_BYTES` of growth), and when each computation ends (yields the callback, or
    ``None`` where trimming is unavailable)."""
    if _LIBC is None:
        yield None
        return
    with _Trim(interval) as cb:
        yield cb
