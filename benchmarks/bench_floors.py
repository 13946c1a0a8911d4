"""Benchmark: what the least robust work costs against the I/O floor (issue 7's context).

Scenarios
---------
``robust_floor``
    One rolling median and one rolling MAD (``|x - median|``, its rolling median) per sensor
    over a day (96 steps, centred), with bottleneck's ``move_median`` — the fastest stock
    kernel here — on every ``(sensor, time)`` float variable of the store, read from Zarr on
    dask's local threads, each result summed so the work finishes. It is not the pipeline:
    it is the smallest computation that still deserves the name "robust anomaly score
    (rolling median/MAD)", so its ``vs_floor`` bounds what any pipeline that computes such a
    score can reach against the I/O floor (``docs/scale.md``, "The I/O-floor target").
``rolling_median``
    The rolling median alone (the same kernel, window, inputs).
``robust_floor_short``
    The robust floor with the shortest window perception uses (9 steps, its spike window)
    and the workbench's fastest median kernel at that width (``_qcnb.median_residual``:
    ``x`` minus its centred median, steps taken in pairs that share 8 values), used twice:
    ``r = |x - median(x)|``, then ``median(r) = r - (r - median(r))``.

No pandas twin: these are references for the pipeline's row, not stages of it.
"""

from __future__ import annotations

from benchmarks._harness import Scenario

#: the window of both references: one day of 15-minute steps
WINDOW = 96
#: the short window: perception's spike window (registry ``spike_window``)
SHORT = 9


def _series(ctx):
    """The store's ``(sensor, time)`` float variables as dask arrays (lazy; untimed)."""
    from workbench.io import read_city

    tree = read_city(ctx.store)
    return [node.ds[name].data for node in tree.subtree for name, v in node.ds.data_vars.items()
            if v.dims == ("sensor", "time") and v.dtype.kind == "f"]


def _median(block):
    import bottleneck as bn
    import numpy as np

    half = WINDOW // 2
    m = bn.move_median(block, WINDOW, min_count=1, axis=-1)  # trailing window ending at t
    out = np.empty_like(m)  # centre it: the value at t is the window ending at t + half
    out[:, :-half] = m[:, half:]
    out[:, -half:] = m[:, -1:]
    return out


def _median_mad(block):
    import numpy as np

    m = _median(block)
    np.subtract(block, m, out=m)
    np.abs(m, out=m)
    return _median(m)


def _median_mad_short(block):
    import numpy as np

    from workbench.perception._kernels import centered_median
    from workbench.perception._qcnb import median_residual

    def residual(x):  # x - its centred median, in x (the kernel declines rows shorter than the window)
        r = median_residual(x, SHORT, inplace=True)
        return r if r is not None else x - centered_median(x, SHORT)

    r = residual(np.array(block, dtype=np.float64, order="C"))
    np.abs(r, out=r)
    return r - residual(r.copy())  # the median of |x - median|


def _total(ctx, kernel):
    import dask
    import dask.array as dsa

    sums = [dsa.map_blocks(kernel, x.rechunk({1: -1}), dtype=x.dtype).sum() for x in ctx.state]
    with dask.config.set(scheduler="threads"):
        return dask.compute(*sums)


def _robust(ctx):
    return _total(ctx, _median_mad)


def _rolling_median(ctx):
    return _total(ctx, _median)


def _robust_short(ctx):
    return _total(ctx, _median_mad_short)


_NOTE = "every (sensor, time) variable, dask threads; "
SCENARIOS = [
    Scenario(stage=stage, sensors=n, days=365, setup=_series, run=run, floor="io", warmup=False, note=_NOTE + note)
    for n in (1_000, 10_000)
    for stage, run, note in (("rolling_median", _rolling_median, f"bottleneck move_median, window {WINDOW}"),
                             ("robust_floor", _robust, f"bottleneck move_median and MAD, window {WINDOW}"),
                             ("robust_floor_short", _robust_short, f"pairwise 9-step median and MAD, window {SHORT}"))
]
