"""Helpers shared by the reader tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench.io._build import Collector

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "datasets" / "fixtures"


def assert_same_cube(a: xr.DataTree, b: xr.DataTree) -> None:
    """Same system nodes, each node identical (values, coords, attrs); root attrs ignored."""
    assert sorted(a.children) == sorted(b.children)
    for name in a.children:
        xr.testing.assert_identical(a[name].to_dataset(), b[name].to_dataset())


def reconciles(report) -> bool:
    return report.n_in == report.n_accepted + report.n_quarantined and len(report.quarantined) == report.n_quarantined


def sample_cube(seed: int = 0) -> xr.DataTree:
    """A small cube over three systems, built by the shared builder (canonical units)."""
    rng = np.random.default_rng(seed)
    rows = []
    times = pd.date_range("2024-07-01", periods=6, freq="h")
    sensors = {
        "energy": [("feeder-1", 50.01, 10.02, "Z01"), ("feeder-2", 50.02, 10.07, "Z02")],
        "environment": [("wx-1", 50.03, 10.04, "Z01")],
        "water": [("dma-1", np.nan, np.nan, "")],
    }
    variables = {"energy": ["electric_load"], "environment": ["air_temperature", "no2"], "water": ["water_flow", "water_pressure"]}
    for system, sens in sensors.items():
        for sid, lat, lon, zone in sens:
            for var in variables[system]:
                for t in times:
                    if rng.random() < 0.15:
                        continue  # leave a hole
                    value = round(float(rng.uniform(1, 15)), 3)
                    rows.append((sid, t.strftime("%Y-%m-%dT%H:%M:%SZ"), var, value, "", lat, lon, zone))
    frame = pd.DataFrame(rows, columns=["sensor", "time", "variable", "value", "unit", "lat", "lon", "zone"])
    frame.insert(0, "row", np.arange(1, len(frame) + 1))
    c = Collector(source="sample", sha256="", format="test")
    c.add(frame)
    tree, report = c.finish()
    assert report.n_quarantined == 0
    return tree
