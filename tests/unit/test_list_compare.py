"""Overlap@k, top-k rank correlation and hits: the numbers shadow scoring reports."""

from __future__ import annotations

import pytest

from stream.domain.list_compare import hit, overlap_at_k, rank_correlation

TEN = [f"i{i}" for i in range(10)]


def test_overlap_counts_common_items_in_the_top_k_over_k() -> None:
    assert overlap_at_k(TEN, list(reversed(TEN))) == 1.0
    assert overlap_at_k(TEN, [f"x{i}" for i in range(10)]) == 0.0
    assert overlap_at_k(TEN, TEN[:5] + [f"x{i}" for i in range(5)]) == 0.5
    assert overlap_at_k([*TEN, "late"], ["late", *TEN[:9]]) == 0.9  # "late" is 11th in a
    assert overlap_at_k(["a"], ["a"]) == 0.1  # short lists agree on few items only
    assert overlap_at_k([], []) == 1.0


def test_rank_correlation_is_one_for_same_order_and_minus_one_reversed() -> None:
    assert rank_correlation(TEN, TEN) == pytest.approx(1.0)
    assert rank_correlation(TEN, list(reversed(TEN))) == pytest.approx(-1.0)


def test_rank_correlation_orders_partial_agreement_between_the_extremes() -> None:
    swapped = [TEN[1], TEN[0], *TEN[2:]]
    half = TEN[:5] + [f"x{i}" for i in range(5)]
    disjoint = [f"x{i}" for i in range(10)]
    values = [rank_correlation(TEN, other) for other in (TEN, swapped, half, disjoint)]
    assert values == sorted(values, reverse=True)
    assert 0.9 < values[1] < 1.0 and values[3] < 0.0


def test_rank_correlation_degenerate_lists() -> None:
    assert rank_correlation([], []) == 1.0
    assert rank_correlation(["a"], ["a"]) == 1.0
    assert rank_correlation(["a"], []) == 0.0


def test_hit_looks_at_the_top_k_only() -> None:
    assert hit(["i3"], TEN)
    assert hit(["zz", "i9"], TEN)  # an order with several items
    assert not hit(["late"], [*TEN, "late"])
    assert not hit([], TEN)
