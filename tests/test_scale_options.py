"""Workbench options: the scheduler choice, progress, and the xarray options computations need."""

from __future__ import annotations

import shutil

import bottleneck
import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import workbench
from workbench import _options
from workbench._options import (
    XARRAY_OPTIONS,
    SchedulerError,
    get_client,
    resolve_scheduler,
    scheduler_context,
    with_xarray_options,
    xarray_options,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with dask.config.set({"scheduler-address": None}):
        yield


def test_defaults_and_exported_from_package():
    assert workbench.set_options is _options.set_options
    assert workbench.get_options is _options.get_options
    opts = workbench.get_options()
    assert opts["scheduler"] is None and opts["progress"] is False
    with pytest.raises(TypeError):
        opts["scheduler"] = "threads"  # read-only view


def test_set_options_as_context_restores():
    with workbench.set_options(scheduler="synchronous", progress=True):
        assert workbench.get_options()["scheduler"] == "synchronous"
        assert workbench.get_options()["progress"] is True
        with workbench.set_options(scheduler="processes"):
            assert workbench.get_options()["scheduler"] == "processes"
        assert workbench.get_options()["scheduler"] == "synchronous"
    assert workbench.get_options()["scheduler"] is None
    assert workbench.get_options()["progress"] is False


def test_set_options_globally():
    try:
        workbench.set_options(scheduler="synchronous")
        assert workbench.get_options()["scheduler"] == "synchronous"
        assert resolve_scheduler() == "synchronous"
    finally:
        workbench.set_options(scheduler=None)
    assert resolve_scheduler() == "threads"


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"scheduler": "gpu"}, ["scheduler='gpu'", "tcp://"]),
        ({"scheduler": 3}, ["scheduler=3"]),
        ({"progress": "yes"}, ["progress='yes'", "True or False"]),
        ({"colour": "red"}, ["'colour'", "progress, scheduler"]),
    ],
)
def test_bad_options_are_one_clear_sentence(kw, words):
    with pytest.raises(ValueError) as err:
        workbench.set_options(**kw)
    for word in words:
        assert word in str(err.value)
    assert workbench.get_options()["scheduler"] is None  # nothing half-set


def test_environment_address_is_honoured(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.1.2.3:8786")
    assert resolve_scheduler() == "tcp://10.1.2.3:8786"
    with workbench.set_options(scheduler="synchronous"):  # an explicit option wins
        assert resolve_scheduler() == "synchronous"
    assert resolve_scheduler("threads") == "threads"  # an explicit argument wins


@pytest.mark.parametrize("name", ["threads", "synchronous", "processes"])
def test_scheduler_context_sets_the_dask_scheduler(name):
    seen = {}

    def record(x):
        seen["scheduler"] = dask.base.get_scheduler()
        return x

    with workbench.set_options(scheduler=name), scheduler_context() as sched:
        assert sched == name
        assert dask.config.get("scheduler") == name
        if name != "processes":  # a local function does not pickle into a process pool
            da.ones(4, chunks=2).map_blocks(record).sum().compute()
            assert seen["scheduler"] is dask.base.named_schedulers[name]
        assert int(da.ones(6, chunks=2).sum().compute()) == 6
    assert dask.config.get("scheduler", None) != name


def test_nested_context_inherits_the_outer_scheduler():
    with scheduler_context("synchronous"):
        assert resolve_scheduler() == "synchronous"
        with scheduler_context() as inner:  # e.g. write_city inside the pipeline
            assert inner == "synchronous"
    assert resolve_scheduler() == "threads"


def test_progress_bar_on_local_scheduler(capsys):
    with scheduler_context("threads", progress=True, desc="summing"):
        da.ones(10, chunks=2).sum().compute()
    assert "summing" in capsys.readouterr().err
    with scheduler_context("threads", progress=False, desc="quiet"):
        da.ones(10, chunks=2).sum().compute()
    assert "quiet" not in capsys.readouterr().err


def test_unreachable_scheduler_is_a_clear_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SchedulerError, match=rf"cannot reach the dask scheduler at tcp://127.0.0.1:{port}"):
        get_client(f"tcp://127.0.0.1:{port}", timeout="1s")


# --- xarray options (PERFORMANCE.md pitfall 1) --------------------------------------------


def test_xarray_options_on_inside_workbench_computations():
    with xr.set_options(use_bottleneck=False, use_numbagg=False, use_flox=False):
        with scheduler_context("synchronous"):
            for key, value in XARRAY_OPTIONS.items():
                assert xr.get_options()[key] is value, key
        with xarray_options():
            assert xr.get_options()["use_bottleneck"] and xr.get_options()["use_numbagg"]

        @with_xarray_options
        def inside():
            return dict(xr.get_options())

        got = inside()
        assert got["use_bottleneck"] and got["use_numbagg"] and got["use_flox"]
        # and the user's own settings come back afterwards
        assert xr.get_options()["use_bottleneck"] is False
        assert xr.get_options()["use_numbagg"] is False


def test_rolling_median_built_inside_uses_bottleneck(monkeypatch):
    """The kernel is chosen when the lazy graph is built: it must be bottleneck's (or numbagg's)."""
    calls = []
    real = bottleneck.move_median

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(bottleneck, "move_median", spy)
    arr = xr.DataArray(
        da.from_array(np.random.default_rng(0).normal(size=(4, 200)), chunks=(2, 200)), dims=("sensor", "time")
    )
    expected = real(arr.values, 5, axis=-1)  # bottleneck's own result, called directly
    calls.clear()
    with xr.set_options(use_bottleneck=False, use_numbagg=False):  # the user's (slow) setting
        with xarray_options():
            fast = arr.rolling(time=5).median()
        fast = fast.compute()
    assert calls, "rolling median built in xarray_options() did not go through bottleneck"
    np.testing.assert_allclose(fast.values, expected)


def test_write_city_honours_the_scheduler_option(tmp_path, small_city):
    from workbench.io import read_city, write_city

    seen = []

    class Spy(dask.callbacks.Callback):
        def _start(self, dsk):
            seen.append(dask.config.get("scheduler"))

    with workbench.set_options(scheduler="synchronous"), Spy():
        write_city(small_city, tmp_path / "c.zarr")
    assert seen and set(seen) == {"synchronous"}
    assert read_city(tmp_path / "c.zarr")["energy"].sizes["sensor"] == 8
    shutil.rmtree(tmp_path / "c.zarr")


def test_worker_environ_keeps_thread_limits_but_not_the_malloc_trim():
    import dask

    from workbench._options import worker_environ

    env = worker_environ()
    assert "MALLOC_TRIM_THRESHOLD_" not in env
    assert str(env.get("OMP_NUM_THREADS")) == "1"
    assert "MALLOC_TRIM_THRESHOLD_" in dask.config.get("distributed.nanny.pre-spawn-environ")  # the user's config is untouched
