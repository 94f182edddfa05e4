"""``capped_top`` against the Python selection it replaced (``ScoredSet._diversified`` at
λ = 1: allowed positions, the best ``head`` by a partition, a stable sort, ``diversify``'s
walk and fill): ties, NaN scores, PAD groups, exempt items, caps of 1 and lists left short."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.domain.catalog import PAD
from stream.domain.diversity import Caps, diversify
from stream.domain.diversity_kernel import capped_top, seen_last, warm_up


def reference(
    score: np.ndarray,
    allowed: np.ndarray,
    groups: list[np.ndarray],
    limits: list[int],
    exempt: np.ndarray,
    size: int,
    head: int,
) -> list[int]:
    pos = np.flatnonzero(allowed)
    if size <= 0 or pos.size == 0:
        return []
    head = min(pos.size, head)
    if head < pos.size:
        pos = pos[np.argpartition(-score[pos], head - 1)[:head]]
    order = pos[np.argsort(-score[pos], kind="stable")]
    caps = Caps([g[order] for g in groups], limits)
    picked = diversify(np.arange(order.size), caps, exempt[order], size)
    return order[picked].tolist()


N = 40


@st.composite
def cases(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(0, N))
    # few distinct values: many ties; NaN sometimes
    values = st.one_of(st.integers(-3, 3).map(float), st.just(float("nan")))
    score = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    allowed = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.bool_)
    rows = draw(st.integers(0, 2))
    groups = [
        np.array(draw(st.lists(st.integers(PAD, 4), min_size=n, max_size=n)), dtype=np.int64)
        for _ in range(rows)
    ]
    limits = [draw(st.integers(1, 3)) for _ in range(rows)]
    exempt = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.bool_)
    return score, allowed, groups, limits, exempt, draw(st.integers(0, 12))


def kernel(score, allowed, groups, limits, exempt, size, head) -> list[int]:  # type: ignore[no-untyped-def]
    rows = np.zeros((len(groups), score.size), dtype=np.int64)
    for r, g in enumerate(groups):
        rows[r] = g
    caps = np.array(limits, dtype=np.int64)
    return capped_top(score, allowed, rows, caps, exempt, size, head).tolist()


@settings(max_examples=400, deadline=None)
@given(case=cases())
def test_the_kernel_picks_what_the_python_walk_picks(case: tuple) -> None:
    score, allowed, groups, limits, exempt, size = case
    head = N  # every allowed item within the head: no partition boundary to tie at
    assert kernel(score, allowed, groups, limits, exempt, size, head) == reference(
        score, allowed, groups, limits, exempt, size, head
    )


@settings(max_examples=200, deadline=None)
@given(case=cases(), head=st.integers(1, 10))
def test_a_short_head_bounds_the_walk_like_the_partition(case: tuple, head: int) -> None:
    score, allowed, groups, limits, exempt, size = case
    # distinct scores: which items make the head is defined on both sides
    score = np.arange(score.size, dtype=np.float64)[::-1] * 0.5
    assert kernel(score, allowed, groups, limits, exempt, size, head) == reference(
        score, allowed, groups, limits, exempt, size, head
    )


@settings(max_examples=300, deadline=None)
@given(
    case=cases(),
    seen=st.lists(st.booleans(), min_size=N, max_size=N),
    tail=st.integers(0, 6),
    per_slot=st.integers(0, 4),
)
def test_seen_last_is_the_capped_unseen_then_the_seen_by_score(
    case: tuple, seen: list[bool], tail: int, per_slot: int
) -> None:
    """``seen_last`` against what ``ScoredSet.select`` did in numpy: the unseen through
    ``capped_top``, room kept for the seen, then the seen by a stable argsort of -score."""
    score, keep, groups, limits, exempt, size = case
    old = np.array(seen[: score.size], dtype=np.bool_)
    shown = old & keep
    k = size - min(int(shown.sum()), tail)
    head = max(per_slot * k, N)  # every allowed item within the head (see above)
    first = kernel(score, keep & ~old, groups, limits, exempt, k, head) if k > 0 else []
    pos = np.flatnonzero(shown)
    rest = pos[np.argsort(-score[pos], kind="stable")][: max(size - len(first), 0)].tolist()
    rows = np.zeros((len(groups), score.size), dtype=np.int64)
    for r, g in enumerate(groups):
        rows[r] = g
    caps = np.array(limits, dtype=np.int64)
    got = seen_last(score, keep, old, rows, caps, exempt, size, tail, per_slot, N)
    assert got.tolist() == first + rest


def test_a_cap_of_one_fills_a_short_list_from_the_skipped_in_score_order() -> None:
    score = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    groups = [np.array([1, 1, 1, 2, 2], dtype=np.int64)]
    exempt = np.array([False, False, True, False, False])
    got = kernel(score, np.ones(5, dtype=np.bool_), groups, [1], exempt, 4, 10)
    assert got == [0, 2, 3, 1]  # 2 is exempt, 1 and 4 wait for the fill


def test_groups_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(IndexError):
        capped_top(
            np.ones(3),
            np.ones(3, dtype=np.bool_),
            np.ones((1, 2), dtype=np.int64),
            np.ones(1, dtype=np.int64),
            np.zeros(3, dtype=np.bool_),
            2,
            5,
        )


def test_warm_up_compiles_the_kernel() -> None:
    assert warm_up() >= 0.0
