"""``PopularTops`` (the catalog's popular lists, read in compiled batches) against a full
recomputation at every read: ``best`` of the eligible members by ``popularity + tiebreak``.
Whole-number popularity and a zero tiebreak make many exact ties; steps grow a few items
(the insertion merge), many (past ``top_kernels.FEW``: the sorting merge) or more than
``REBUILD_SPAN`` (a rebuild), and stock moves start a new epoch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.domain.top_kernels import FEW
from stream.domain.top_lists import REBUILD_SPAN, GrowingTops, PopularTops, best

N = 30

#: one step: items that grow (repeats allowed), by how much, which lists are read with which
#: k, and whether an item's stock flips first (a new epoch)
steps = st.lists(
    st.tuples(
        st.lists(st.integers(0, N - 1), min_size=1, max_size=6),
        st.sampled_from([0.0, 1.0, 1.0, 2.0]),
        st.lists(st.integers(1, 4), max_size=5),
        st.integers(1, 9),
        st.sampled_from(["few", "few", "many", "span"]),
        st.one_of(st.none(), st.integers(0, N - 1)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(
    popularity=st.lists(st.integers(0, 4), min_size=N, max_size=N),
    rows=st.lists(st.lists(st.integers(0, 4), min_size=3, max_size=3), min_size=N, max_size=N),
    stock=st.lists(st.integers(-1, 2), min_size=N, max_size=N),
    deleted=st.lists(st.booleans(), min_size=N, max_size=N),
    steps=steps,
    depth=st.integers(1, 8),
)
def test_every_read_equals_a_full_recomputation(
    popularity: list[int],
    rows: list[list[int]],
    stock: list[int],
    deleted: list[bool],
    steps: list[tuple[list[int], float, list[int], int, str, int | None]],
    depth: int,
) -> None:
    pop = np.asarray(popularity, dtype=np.float64)
    tiebreak = np.zeros(N)
    available = np.asarray(stock, dtype=np.int64)
    gone = np.asarray(deleted, dtype=np.bool_)
    feature_ids = np.asarray(rows, dtype=np.int32)
    arrays = (pop, tiebreak, available, gone, feature_ids)
    log = GrowingTops()
    by_feature = PopularTops(log, depth, by_feature=True)
    overall = PopularTops(log, depth, by_feature=False)
    epoch = 0

    def members(fid: int) -> np.ndarray:
        return np.flatnonzero((feature_ids == fid).any(axis=1)).astype(np.int64)[::-1]

    def every(_: int) -> np.ndarray:
        return np.arange(N, dtype=np.int64)

    def expected(candidates: np.ndarray, k: int) -> list[int]:
        candidates = np.sort(candidates)
        candidates = candidates[(available[candidates] > 0) & ~gone[candidates]]
        return best(candidates, k, lambda i: pop[i] + tiebreak[i]).tolist()

    for grown, amount, fids, k, size, flip in steps:
        if size == "many":
            grown = (grown * (FEW + 1))[: 2 * FEW]
        elif size == "span":
            grown = (grown * REBUILD_SPAN)[: REBUILD_SPAN + 1]
        for i in grown:
            pop[i] += amount
        log.grew(grown)
        if flip is not None:
            available[flip] = 1 - available[flip] if available[flip] <= 1 else 0
            epoch += 1
        names = np.asarray(fids, dtype=np.int64)
        got = by_feature.read(names, k, epoch, arrays, members)
        want = [i for fid in fids for i in expected(members(fid), k)]
        assert got.tolist() == want
        everyone = overall.read(np.zeros(1, dtype=np.int64), k, epoch, arrays, every)
        assert everyone.tolist() == expected(every(0), k)


def test_a_few_grown_items_merge_without_a_rebuild() -> None:
    """Within an epoch a read a few log entries behind merges them in the compiled pass (a
    member that grew moves up, an outsider that grew past the lowest member enters) and never
    asks for the members again."""
    pop = np.arange(200, dtype=np.float64)
    arrays = (pop, np.zeros(200), np.ones(200, dtype=np.int64), np.zeros(200, dtype=np.bool_))
    feature_ids = np.ones((200, 1), dtype=np.int32)
    asked: list[int] = []

    def members(fid: int) -> np.ndarray:
        asked.append(fid)
        return np.arange(200, dtype=np.int64)

    log = GrowingTops()
    tops = PopularTops(log, 5, by_feature=True)

    def read() -> list[int]:
        return tops.read(np.ones(1, dtype=np.int64), 5, 0, (*arrays, feature_ids), members).tolist()

    assert read() == [199, 198, 197, 196, 195]
    pop[3] += 1000.0  # enters at the top
    pop[196] += 3.5  # a member that moves up past 199
    pop[100] += 0.5  # grows, still far below the lowest member
    log.grew([3, 196, 3, 100])
    assert read() == [3, 196, 199, 198, 197]
    assert asked == [1]


def test_a_log_entry_outside_the_catalog_raises() -> None:
    arrays = (np.ones(4), np.zeros(4), np.ones(4, dtype=np.int64), np.zeros(4, dtype=np.bool_))
    feature_ids = np.ones((4, 1), dtype=np.int32)
    log = GrowingTops()
    tops = PopularTops(log, 3, by_feature=True)
    names = np.ones(1, dtype=np.int64)
    tops.read(names, 3, 0, (*arrays, feature_ids), lambda fid: np.arange(4, dtype=np.int64))
    log.grew([2, 9])
    with pytest.raises(IndexError):
        tops.read(names, 3, 0, (*arrays, feature_ids), lambda fid: np.arange(4, dtype=np.int64))


def test_a_list_takes_a_row_at_its_first_read_not_one_per_id_below_it() -> None:
    """Lists get rows in the order they are first read: a feature id far up a large
    vocabulary costs one row of the table (plus a slot in the name map), not a row for every
    id below it; each list still reads its own members."""
    n = 6
    pop = np.arange(n, dtype=np.float64)
    feature_ids = np.array([[7], [100_000], [7], [100_000], [7], [3]], dtype=np.int32)
    arrays = (pop, np.zeros(n), np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.bool_))

    def members(fid: int) -> np.ndarray:
        return np.flatnonzero((feature_ids == fid).any(axis=1)).astype(np.int64)

    tops = PopularTops(GrowingTops(), 4, by_feature=True)
    names = np.array([100_000, 7, 3], dtype=np.int64)
    got = tops.read(names, 4, 0, (*arrays, feature_ids), members).tolist()
    assert got == [3, 1, 4, 2, 0, 5]
    assert tops._rows.shape[0] < 8  # three lists read: a handful of rows, not 100,001
    assert tops.read(names[:1], 4, 0, (*arrays, feature_ids), members).tolist() == [3, 1]
