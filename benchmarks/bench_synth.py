"""Benchmark: building and writing the reference city (the foundation issue's "Must show").

Scenarios
---------
``synth_build``
    ``make_city(...)`` of a 10,000-sensor year: the lazy build only (it must cost next to
    nothing: no data is computed).
``synth_write``
    ``make_city(...)`` then ``write_city(...)`` to Zarr: the default reference city (12
    zones × 40 sensors per system × 28 days) and a 1,000-sensor month (``zones=20,
    sensors_per_system=143, days=30``). Compared with the I/O floor of the same store
    (streaming it back and summing it); there is no pandas twin.
"""

from __future__ import annotations

from benchmarks._harness import Scenario


def _build(ctx):
    from workbench.synth import make_city

    return make_city(**ctx.size)


def _build_and_write(ctx):
    from workbench.io import write_city

    return write_city(_build(ctx), ctx.scratch / "city.zarr")


SCENARIOS = [
    Scenario(stage="synth_build", sensors=10_000, days=365, run=_build, floor=None, warmup=False, quick=True,
             note="lazy: make_city only, nothing computed"),
    Scenario(stage="synth_write", sensors=280, days=28, run=_build_and_write, floor="io", quick=True,
             note="the reference city (make_city() defaults) to Zarr"),
    Scenario(stage="synth_write", sensors=1_000, days=30, run=_build_and_write, floor="io", quick=True,
             note="make_city(zones=20, sensors_per_system=143, days=30) to Zarr"),
]
