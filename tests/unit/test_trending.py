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


def test_counts_add_as_numpy_add_at_does_duplicates_included() -> None:
    """``observe`` adds element by element (cheaper than ``np.add.at`` for an event's few
    items): the counts, the best per horizon and the top list must be bit-for-bit the same."""
    rng = np.random.default_rng(3)
    trend = Trending(capacity=8)
    expected = np.zeros((2, 8))
    t0 = None
    for n in range(300):
        items = rng.integers(0, 8, size=int(rng.integers(1, 5))).tolist()  # repeats happen
        weight, ts = float(rng.choice([0.5, 1.0, 3.0, 5.0])), n * 3_600_000.0
        trend.observe(items, weight, ts)
        t0 = ts if t0 is None else t0
        for row, tau in enumerate(trend.horizons_ms):
            np.add.at(expected[row], np.asarray(items), weight * math.exp((ts - t0) / tau))
        if n % 50 == 0:
            trend.values(np.arange(8))  # a read keeps a running best from here on
    assert trend._rebases == 0 and trend.t0 == 0.0
    assert np.array_equal(trend.scores[:, :8], expected)
    best = expected.max(axis=1)
    assert np.array_equal(trend.values(np.arange(8)), expected.T / best)
    assert trend.top(8).tolist() == np.lexsort((np.arange(8), -expected[0]))[:8].tolist()


def test_trend_columns_are_filled_in_place_as_values_gives_them() -> None:
    trend = Trending(capacity=4)
    trend.observe([0, 2], 1.0, 0.0)
    trend.observe([2], 2.0, DAY_MS)
    cands = np.array([0, 1, 2, 9, -1])  # 9: past the counts; -1: the last, as numpy reads it
    block = np.full((cands.size, 8), 7.0)
    trend.fill(cands, block[:, 6:8])
    want = np.zeros((cands.size, 2))
    inside = cands < trend.scores.shape[1]
    want[inside] = (trend.scores[:, cands[inside]] / trend.scores.max(axis=1)[:, None]).T
    assert block[:, 6:8].tobytes() == np.ascontiguousarray(want).tobytes()
    assert trend.values(cands).tobytes() == want.tobytes()
    assert (block[:, :6] == 7.0).all()
    with pytest.raises(ValueError, match="shape"):
        trend.fill(cands, block[:, 5:8])


@pytest.mark.parametrize("seed", range(4))
def test_the_compiled_hot_merge_is_the_generic_merge(seed: int) -> None:
    """The hot list merged in one compiled call (inserting a few grown items) reads as the
    ``GrowingTops`` merge through ``key``/``admit`` did, ties, repeats and long merges
    included; a NaN count goes through ``merge_top`` as before."""
    rng = np.random.default_rng(40 + seed)
    trend = Trending(capacity=150)
    row = trend.scores[0]
    for step in range(1500):
        burst = int(rng.choice([1, 1, 2, 3, 90]))  # 90: past ``SMALL``, the numpy filter
        trend.observe(rng.choice(150, size=burst).tolist(), float(rng.choice([1.0, 2.0])), step)
        if seed == 3 and step == 700:
            trend.scores[0, 5] = math.nan
        if rng.random() < 0.4:
            generic = trend._tops.top(
                "generic",
                40,
                100,
                trend._rebases,
                lambda: np.flatnonzero(row > 0),
                lambda grown: trend.scores[0, grown] > 0,
                trend._hot_key,
                row.size,
            )
            assert trend.top(40).tobytes() == generic.tobytes()
