"""The run table (perception._runs) against the plain per-run recipe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.perception._runs import _runs, runs_to_events


def _loop(mk, z, sc, sensors, zones, time, merge):
    rows = []
    for i, a, b in _runs(mk, merge):
        seg = np.where(mk[i, a:b + 1], np.abs(z[i, a:b + 1]), np.nan)
        s = sc[i, a:b + 1]
        rows.append({"kind": "anomaly", "system": "water", "zone": zones[i], "sensor": sensors[i], "start": time[a],
                     "end": time[b], "severity": float(np.nanmax(seg)) if np.isfinite(seg).any() else np.nan,
                     "variable": "v", "score": float(s[np.nanargmax(np.abs(s))]) if np.isfinite(s).any() else np.nan})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("merge", [0, 3])
def test_runs_to_events_equals_the_per_run_recipe(merge):
    rng = np.random.default_rng(merge)
    n, n_t = 7, 500
    mk = rng.random((n, n_t)) < 0.1
    z = rng.normal(size=mk.shape)
    z[rng.random(z.shape) < 0.2] = np.nan
    sc = np.round(rng.normal(size=mk.shape), 1)  # ties of magnitude: the first one wins
    sc[rng.random(sc.shape) < 0.2] = np.nan
    sc[2] = np.nan
    time = pd.date_range("2026-01-01", periods=n_t, freq="15min")
    sensors, zones = [f"s{i}" for i in range(n)], [f"z{i % 3}" for i in range(n)]
    coords = {"sensor": sensors, "time": time, "zone": ("sensor", zones)}
    da = lambda a: xr.DataArray(a, dims=("sensor", "time"), coords=coords)  # noqa: E731
    got = runs_to_events(da(mk), da(z), kind="anomaly", system="water", merge=merge, extra={"variable": "v"},
                         signed_score=da(sc))
    want = _loop(mk, z, sc, sensors, zones, time, merge)
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want[got.columns], check_dtype=False, check_exact=True)
