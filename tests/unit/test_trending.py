"""Recent popularity on two horizons (forward decay): hand-computed ratios, rebasing, top list."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream.domain.trending import DAY_MS, Trending


def test_each_horizon_decays_older_interactions_by_its_own_tau() -> None:
    trend = Trending(capacity=2)
    trend.observe([0], 1.0, 0.0)
    trend.observe([1], 1.0, DAY_MS)  # grows the arrays past their capacity
    day, week = trend.values(np.array([0, 1, 2])).T
    assert day == pytest.approx([math.exp(-1.0), 1.0, 0.0])
    assert week == pytest.approx([math.exp(-1 / 7), 1.0, 0.0])
    assert trend.top(2).tolist() == [1, 0]


def test_rebasing_far_in_the_future_keeps_the_ratios() -> None:
    trend = Trending()
    trend.observe([0], 2.0, 0.0)
    trend.observe([1], 1.0, 0.0)
    late = 200 * DAY_MS  # exp(200) would overflow a float without rebasing
    trend.observe([2], 1.0, late)
    trend.observe([0], 1.0, late)
    values = trend.values(np.array([0, 1, 2]))
    assert np.isfinite(values).all()
    assert values[:, 0] == pytest.approx([1.0, 0.0, 1.0], abs=1e-12)
    restored = Trending.from_dict(trend.to_dict())
    assert restored.values(np.array([0, 1, 2])) == pytest.approx(values)
