"""Interval checks (workbench/perception/_intervals.py) against their pairwise definitions."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.perception._intervals import shared_by_another


@pytest.mark.parametrize("seed", range(6))
def test_shared_by_another_equals_the_pairwise_test(seed):
    """Overlap with another member's interval (ends inclusive), on random tables with ties,
    zero-length intervals, one member only, and members with many intervals."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(0, 60))
        s = rng.integers(0, 200, n).astype(np.int64)
        e = s + rng.integers(0, 30, n)
        who = rng.integers(0, int(rng.integers(1, 6)), n).astype(np.int64)
        want = ((s[:, None] <= e[None, :]) & (e[:, None] >= s[None, :]) & (who[:, None] != who[None, :])).any(axis=1)
        np.testing.assert_array_equal(shared_by_another(s, e, who), want)


def test_shared_by_another_sees_a_later_long_interval_of_someone_else():
    s = np.array([0, 10, 12], dtype=np.int64)
    e = np.array([50, 11, 13], dtype=np.int64)
    who = np.array([0, 1, 1], dtype=np.int64)
    np.testing.assert_array_equal(shared_by_another(s, e, who), [True, True, True])
    np.testing.assert_array_equal(shared_by_another(s, e, np.array([1, 1, 1])), [False, False, False])
