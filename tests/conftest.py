"""Shared fixtures: small reference cities (each built once per test session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Generated catalog cities go to a per-session cache, never the user's."""
    if "WORKBENCH_CACHE" not in os.environ:
        os.environ["WORKBENCH_CACHE"] = str(tmp_path_factory.mktemp("workbench-cache"))
    yield


@pytest.fixture(scope="session")
def small_city():
    """4 zones × 8 sensors per system × 14 days at 15 min, seed 3 (lazy)."""
    from workbench.synth import make_city

    return make_city(zones=4, sensors_per_system=8, days=14, seed=3)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance payloads not found at {CONFORMANCE} (../shared is absent)")
    return CONFORMANCE
