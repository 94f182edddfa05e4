"""``top_kernels.merge_top`` against the numpy it stands for: ``best`` of the list's members
and the admitted grown items (ties broken by index, repeats, lists shorter than their depth,
full lists whose lowest key a grown item only ties). The popularity tables' kernels
(``popular_tops``, ``rebuild_row``) are tested through ``PopularTops`` in
``test_popular_tops.py``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.domain.top_kernels import merge_top, warm_up
from stream.domain.top_lists import best

N = 30


@settings(max_examples=300, deadline=None)
@given(
    scores=st.lists(st.integers(0, 6), min_size=N, max_size=N),
    members=st.sets(st.integers(0, N - 1), max_size=N),
    grown=st.lists(st.integers(0, N - 1), max_size=40),
    admitted=st.lists(st.booleans(), min_size=40, max_size=40),
    depth=st.integers(1, 12),
)
def test_merge_is_the_best_of_members_and_admitted_grown_items(
    scores: list[int], members: set[int], grown: list[int], admitted: list[bool], depth: int
) -> None:
    keys = np.asarray(scores, dtype=np.float64)  # small whole numbers: many exact ties

    def key(items: np.ndarray) -> np.ndarray:
        return keys[items]

    # a list as the lists keep it: the best ``depth`` of its members, in order
    items = best(np.array(sorted(members), dtype=np.int64), depth, key)
    g = np.asarray(grown, dtype=np.int64)
    ok = np.asarray(admitted[: g.size], dtype=np.bool_)
    got = merge_top(items, key(items), g, key(g), ok, depth)
    union = np.union1d(items, g[ok]).astype(np.int64)
    assert got.tolist() == best(union, depth, key).tolist()


def test_a_grown_item_that_only_ties_the_lowest_key_enters_by_index() -> None:
    keys = np.array([5.0, 3.0, 3.0, 1.0])
    items = np.array([0, 2], dtype=np.int64)  # full at depth 2: lowest key 3.0, item 2
    grown = np.array([1, 3], dtype=np.int64)
    got = merge_top(items, keys[items], grown, keys[grown], np.ones(2, dtype=np.bool_), 2)
    assert got.tolist() == [0, 1]


def test_warm_up_compiles_the_kernels() -> None:
    assert warm_up() >= 0.0
