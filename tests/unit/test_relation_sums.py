"""The relation signals' compiled sums give, bit for bit, what the code they replaced gave.

``recency_sums`` computes each query's recencies in the kernel (``math.exp`` compiled): its
result is compared with the Python loop ``signals.relation_scores`` ran before it, followed by
``relation_sums``, on ages of every size (negative, NaN and integral included). The radix sort
of the targets is compared with ``np.sort``, and the kernels that check their own bounds with
those that do not.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from stream.domain import relation_kernels, relation_sums
from stream.domain.query_rows import QueryRows
from stream.domain.ranking_profile import RankingProfile
from stream.domain.signals import relation_scores


def _rows(rng: np.random.Generator, n_rows: int, width: int, items: int) -> tuple:
    lens = rng.integers(0, width + 1, size=n_rows)
    parts = [rng.choice(items, size=n, replace=False) for n in lens]
    targets = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    return targets, np.repeat(np.arange(n_rows, dtype=np.int64), lens)


def _python_recency(stamps, buy, now, taus, buy_weight, short_rows, long_rows):  # type: ignore[no-untyped-def]
    """``relation_scores``' loop before the kernel."""
    recency, long_recency = [], []
    for r, (ts, is_buy) in enumerate(zip(stamps, buy, strict=True)):
        age = max(0.0, now - ts)
        weight = buy_weight if is_buy else 1.0
        recency.append(weight * math.exp(-age / taus[0]) if r < short_rows else 0.0)
        long_recency.append(weight * math.exp(-age / taus[1]) if r < long_rows else 0.0)
    return np.array(recency), np.array(long_recency)


@pytest.mark.parametrize("seed", range(16))
def test_recency_sums_are_the_python_recencies_then_relation_sums(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    n_rows = int(rng.integers(1, 60))
    targets, row_of = _rows(rng, n_rows, 30, 300)
    strengths = rng.choice([0.25, 0.5, 1.0, -0.25], size=targets.size) * rng.random(targets.size)
    now = 1.7e12 + float(rng.integers(0, 10**9))
    spread = 10.0 ** int(rng.integers(0, 12))
    stamps = now - rng.random(n_rows) * spread * rng.choice([1.0, -0.1], size=n_rows)
    stamps = np.where(rng.random(n_rows) < 0.2, np.floor(stamps), stamps)
    if seed % 4 == 0:
        stamps[0] = math.nan  # max(0.0, nan) is 0.0: Python's max keeps its first argument
    buy = rng.random(n_rows) < 0.3
    taus = (24 * 3600 * 1000.0, 30 * 24 * 3600 * 1000.0) if seed % 2 else (3.5, 1e4)
    short_rows = int(rng.integers(0, n_rows + 1))
    long_rows = n_rows if seed % 3 else 0
    slots = relation_kernels.scratch_slots(targets)
    *got, ok = relation_sums.recency_sums(
        targets, strengths, row_of, stamps, buy, now, taus, 0.7, short_rows, long_rows, slots
    )
    recency, long_recency = _python_recency(
        stamps.tolist(), buy.tolist(), now, taus, 0.7, short_rows, long_rows
    )
    want = relation_sums.relation_sums(
        targets, strengths, row_of, targets.size, recency, long_recency, slots
    )
    assert ok
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert (slots == -1).all()


def test_compiled_exp_is_the_python_exp_on_many_ages() -> None:
    rng = np.random.default_rng(7)
    ages = np.concatenate([rng.random(20_000) * 10.0 ** rng.integers(0, 13, size=20_000), [0.0]])
    stamps = 1e12 - ages
    n = stamps.size
    targets, row_of = np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    taus = (24 * 3600 * 1000.0, 7.0)
    slots = relation_kernels.scratch_slots(targets)
    buy = np.zeros(n, dtype=np.bool_)
    _, short, long, _, ok = relation_sums.recency_sums(
        targets, np.ones(n), row_of, stamps, buy, 1e12, taus, 0.7, n, n, slots
    )
    want_short, want_long = _python_recency(stamps.tolist(), [False] * n, 1e12, taus, 0.7, n, n)
    kept = (want_short > 0) | (want_long > 0)
    assert ok and short.tobytes() == want_short[kept].tobytes()
    assert long.tobytes() == want_long[kept].tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_kernels_checking_their_bounds_refuse_a_target_outside_the_slots(seed: int) -> None:
    rng = np.random.default_rng(600 + seed)
    targets, row_of = _rows(rng, 12, 20, 200)
    strengths, weights = rng.random(targets.size), rng.random(12)
    slots = relation_kernels.scratch_slots(targets)
    uniq, sums, ok = relation_sums.weighted_sums_at(targets, strengths, row_of, weights, slots)
    want = relation_sums.weighted_sums(targets, strengths, row_of, targets.size, weights, slots)
    assert ok and uniq.tobytes() == want[0].tobytes() and sums.tobytes() == want[1].tobytes()
    if targets.size:
        for bad in (-1, slots.size):
            wrong = targets.copy()
            wrong[-1] = bad
            refused = relation_sums.weighted_sums_at(wrong, strengths, row_of, weights, slots)
            assert refused[2] is False and refused[0].size == 0
            args = (wrong, strengths, row_of, np.zeros(12), np.zeros(12, np.bool_), 0.0)
            out = relation_sums.recency_sums(*args, (1.0, 1.0), 1.0, 12, 12, slots)
            assert out[4] is False and (slots == -1).all()


@pytest.mark.parametrize("top", [0, 1, 255, 256, 70_000, 2**40])
def test_targets_are_sorted_as_np_sort_sorts_them(top: int) -> None:
    rng = np.random.default_rng(top % 97)
    for size in (0, 1, 2, 17, 190, 2_000):
        values = rng.integers(0, top + 1, size=size).astype(np.int64)
        assert relation_sums._ascending(values).tolist() == np.sort(values).tolist()


def test_relation_scores_grow_a_new_threads_slots_and_refuse_a_negative_target() -> None:
    rp = RankingProfile()
    rows = QueryRows(
        [0, 1],
        [5, 6],
        ["buy", "view"],
        [1e12 - 5e6, 1e12 - 9e7],
        (np.array([70_000, 3, 9], np.int64), np.array([0.5, 1.0, 0.25]), np.array([0, 0, 1])),
    )
    results: list[tuple] = []
    worker = threading.Thread(
        target=lambda: results.append(relation_scores(None, None, None, rp, 1e12, rows))  # type: ignore[arg-type]
    )
    worker.start()
    worker.join()
    short, _, sources = results[0]
    assert sources.targets.tolist() == [3, 9, 70_000]
    assert short[2] == 0.5 * 0.7 * math.exp(-5e6 / rp.query_tau_ms)
    assert sources[9] == (0.0, 6, "view", 1e12 - 9e7)
    bad = QueryRows([0], [5], ["view"], [1e12], (np.array([-3]), np.ones(1), np.zeros(1, int)))
    with pytest.raises(ValueError, match="not an item index"):
        relation_scores(None, None, None, rp, 1e12, bad)  # type: ignore[arg-type]
