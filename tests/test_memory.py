"""The C heap is trimmed while local dask computations run (glibc only)."""

from __future__ import annotations

import platform

import dask
import dask.array as da
import numpy as np
import pytest

from workbench._memory import trim, trimming
from workbench._options import scheduler_context

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@glibc
def test_trim_returns_fragmented_free_memory():
    # 64 KiB blocks come from the heap (below the mmap threshold); keeping every 16th pins the
    # heap so that freeing the rest cannot shrink it from the top: only malloc_trim returns them
    blocks = [np.ones(8192) for _ in range(4096)]  # 256 MiB
    keep = blocks[::16]
    del blocks
    before = _rss_mb()
    assert trim()
    assert before - _rss_mb() > 100
    assert all(float(k[0]) == 1.0 for k in keep)


@glibc
def test_trimming_runs_while_tasks_finish_and_at_the_end():
    x = da.random.default_rng(0).random((400, 4000), chunks=(20, 4000))
    with trimming(interval=0.0) as cb:
        total = float((x * 2).sum().compute(scheduler="threads"))
    assert cb is not None and cb.calls >= 20  # every finished task (interval 0) plus the end
    assert total == pytest.approx(float(x.sum().compute()) * 2)


@glibc
def test_scheduler_context_trims_on_local_threads():
    from workbench import _memory

    seen = []
    with scheduler_context("threads"):
        # the active set holds each callback's bound methods: their owners
        seen.extend({m.__self__ for cbs in dask.callbacks.Callback.active for m in cbs
                     if m is not None and isinstance(getattr(m, "__self__", None), _memory._Trim)})
        int(da.ones(10, chunks=5).sum().compute())
    assert len(seen) == 1


def test_local_scheduler_limits_malloc_arenas_once(monkeypatch):
    from workbench import _memory

    class FakeLibc:
        calls: list = []

        def mallopt(self, param, value):
            self.calls.append((param, value))
            return 1

        def malloc_trim(self, pad):
            return 0

    fake = FakeLibc()
    monkeypatch.setattr(_memory, "_LIBC", fake)
    monkeypatch.setattr(_memory, "_ARENAS", None)
    with scheduler_context("threads"):
        int(da.ones(10, chunks=5).sum().compute())
    with scheduler_context("synchronous"):
        pass
    # M_ARENA_MAX and M_MMAP_THRESHOLD, set before the first local compute only
    want = [(-8, _memory.ARENAS), (-3, _memory.MMAP_THRESHOLD)]
    assert fake.calls == want
    assert _memory.limit_arenas(5) and fake.calls == want


def test_trim_comes_sooner_after_growth(monkeypatch):
    """Within the interval, a trim is due once the resident set grew by the threshold (and the
    minimum interval passed); not before."""
    from workbench import _memory

    rss = [1_000]
    monkeypatch.setattr(_memory, "resident_bytes", lambda: rss[0])
    cb = _memory._Trim(interval=10.0, growth=500, min_interval=0.1)
    t0 = cb.last
    assert not cb._due(t0 + 0.5)  # no growth: wait for the interval
    rss[0] = 1_600
    assert not cb._due(t0 + 0.05)  # grown, but within the minimum interval
    assert cb._due(t0 + 0.5)
    rss[0] = 1_200
    assert not cb._due(t0 + 0.5)  # less growth than the threshold
    assert cb._due(t0 + 10.0)  # the interval alone


@pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc")
def test_resident_bytes_sees_an_allocation():
    from workbench._memory import resident_bytes

    before = resident_bytes()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    assert resident_bytes() - before > 48 * 2**20
    del block
