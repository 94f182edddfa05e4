"""Large batches of catalog changes through inverted lists: the bounded merge is exact, the
recomputed rows are checked like the approximate build's."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain import lookup_updates
from stream.domain.lookup import ROLES, QueryTargetLookup
from tests.unit.test_lookup_ivf import grouped, names, scattered


def built(emb: np.ndarray, n: int) -> QueryTargetLookup:
    return QueryTargetLookup(names(n), emb[:, :n].copy(), k=10).build()


def changed(emb: np.ndarray, pos: np.ndarray, move: float, seed: int = 5) -> np.ndarray:
    """New embeddings for items ``pos``: moved, as a changed title or brand moves them."""
    x = emb[:, pos] + move * np.random.default_rng(seed).standard_normal(emb[:, pos].shape)
    return (x / np.linalg.norm(x, axis=2, keepdims=True)).astype(np.float32)


def updated(
    base: QueryTargetLookup, emb: np.ndarray, n: int, batch: list[int], move: float = 0.3
) -> None:
    """Items n.. arrive, then the items ``batch`` change: two upserts."""
    base.upsert(names(emb.shape[1])[n:], emb[:, n:])
    pos = np.asarray(batch)
    base.upsert([f"i{p}" for p in batch], changed(emb, pos, move))


@pytest.mark.parametrize(
    "make", [lambda n: grouped(n, groups=40), scattered], ids=["grouped", "scattered"]
)
def test_entering_a_large_batch_through_the_query_lists_is_exact(
    make: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound leaves out only lists that hold no row a new target beats, whatever the
    embeddings: the rows equal the exact merge's (checked on both shapes of data)."""
    emb = make(1200)  # type: ignore[operator]
    batch = list(range(0, 900, 9))
    monkeypatch.setattr(lookup_updates, "MERGE_LISTS_MIN", 10**9)
    exact = built(emb, 900)
    updated(exact, emb, 900, batch)
    monkeypatch.setattr(lookup_updates, "MERGE_LISTS_MIN", 50)
    lists = built(emb, 900)
    updated(lists, emb, 900, batch)
    assert set(lists.centroids) == set(lookup_updates.PARTS)  # the lists were used
    for role in ROLES:
        np.testing.assert_array_equal(lists.rows[role], exact.rows[role])


def test_rows_cut_short_are_merged_on_their_own_and_the_rest_through_the_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Changed items held by more rows than ``max_recompute`` are cut out of them: those rows
    have a free slot and take any new target. They go through ``free_merge`` (every new
    target offered to each, compiled), the others through the lists, no role through the
    exact merge of every row, and the rows equal the exact merge's."""
    emb = grouped(1200, groups=40)
    batch = list(range(0, 900, 9))
    monkeypatch.setattr(lookup_updates, "MERGE_LISTS_MIN", 10**9)
    exact = built(emb, 900)
    exact.max_recompute = 8
    updated(exact, emb, 900, batch)
    monkeypatch.setattr(lookup_updates, "MERGE_LISTS_MIN", 50)
    lists = built(emb, 900)
    lists.max_recompute = 8
    every: list[int] = []  # per exact merge: how many rows it was asked to merge into
    freed: list[int] = []
    exact_merge, free_merge = QueryTargetLookup._merge, lookup_updates.free_merge

    def spy(self: QueryTargetLookup, pos: np.ndarray, chunk: int, *args: object) -> None:
        only = args[1] if len(args) > 1 else None
        every.append(len(self) if only is None else len(only))  # type: ignore[arg-type]
        exact_merge(self, pos, chunk, *args)  # type: ignore[arg-type]

    def spy_free(lookup: QueryTargetLookup, role: str, rows: np.ndarray, *args: object) -> None:
        freed.append(rows.size)
        free_merge(lookup, role, rows, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(QueryTargetLookup, "_merge", spy)
    monkeypatch.setattr(lookup_updates, "free_merge", spy_free)
    updated(lists, emb, 900, batch)
    assert max(freed) > 100 and all(n < len(lists) for n in every)
    for role in ROLES:
        np.testing.assert_array_equal(lists.rows[role], exact.rows[role])
        # (products over other row blocks: float32 may differ in the last place)
        np.testing.assert_allclose(lists.sims[role], exact.sims[role], rtol=1e-6)


@pytest.mark.parametrize("room", [1, 3, 10], ids=["one free slot", "three", "empty rows"])
def test_free_merge_leaves_the_rows_the_exact_merge_leaves(room: int) -> None:
    """Rows with free slots (one, a few, all K), new targets that tie (two with the same
    embedding): the rows come out as the exact merge's."""
    emb = scattered(400)
    emb[:, 301] = emb[:, 300]  # (a tie in every row for the best new target)
    lookup = built(emb, 400)
    pos, rows = np.arange(300, 340), np.arange(0, 300, 2)
    for role in ROLES:
        cut = (
            np.arange(lookup.k)
            >= lookup.k - np.random.default_rng(1).integers(1, room + 1, rows.size)[:, None]
        )
        ids, sims = lookup._held(role, rows)
        ids[cut], sims[cut] = -1, -np.inf
        lookup._store(role, rows, ids, sims)
    exact = lookup.copy(len(lookup))
    for role in ROLES:
        exact._merge(pos, 7, (role,), rows)
        lookup_updates.free_merge(lookup, role, rows, pos, 7)
        np.testing.assert_array_equal(lookup.rows[role], exact.rows[role])
        np.testing.assert_array_equal(lookup.sims[role], exact.sims[role])
    assert (exact.rows["view"][rows] >= 300).any()  # new targets entered


def test_above_exact_max_grouped_rows_come_from_the_target_lists_and_match() -> None:
    emb = grouped(4000, groups=60)
    exact = built(emb, 3000)
    updated(exact, emb, 3000, list(range(0, 3000, 7)), move=0.05)
    approx = built(emb, 3000)
    approx.exact_max = 0
    updated(approx, emb, 3000, list(range(0, 3000, 7)), move=0.05)
    assert approx.exact_updates == 0  # every check passed: the lists were kept
    for role in ROLES:
        assert (approx.rows[role] == exact.rows[role]).all(axis=1).mean() > 0.99


def test_above_exact_max_scattered_rows_fail_the_check_and_are_computed_exactly() -> None:
    emb = scattered(4000, d=32)
    exact = built(emb, 3000)
    updated(exact, emb, 3000, list(range(0, 3000, 7)))
    approx = built(emb, 3000)
    approx.exact_max = 0
    updated(approx, emb, 3000, list(range(0, 3000, 7)))
    assert approx.exact_updates >= 1
    for role in ROLES:
        np.testing.assert_array_equal(approx.rows[role], exact.rows[role])


def test_groupings_follow_every_item_through_copies_and_growth() -> None:
    emb = grouped(1400, groups=30)
    base = built(emb, 1000)
    base.exact_max = 0
    base.upsert(names(1400)[1000:1300], emb[:, 1000:1300])  # a large batch: groupings made
    labels = {p: base.labels[p].copy() for p in lookup_updates.PARTS}
    copy = base.copy(capacity=1400)
    copy.upsert(names(1400)[1300:], emb[:, 1300:])  # a small one: still placed
    for part in lookup_updates.PARTS:
        assert (copy.labels[part] >= 0).all() and len(copy.labels[part]) == 1400
        np.testing.assert_array_equal(base.labels[part], labels[part])  # the original: as was
        e = copy.embeddings[{"target": 2, "view": 0, "buy": 1}[part]][1300:]
        nearest = np.argmax(e @ copy.centroids[part].T, axis=1)
        np.testing.assert_array_equal(copy.labels[part][1300:], nearest)


def test_small_batches_on_small_lookups_make_no_groupings() -> None:
    emb = grouped(520, groups=10)
    lookup = built(emb, 500)
    lookup.upsert(names(520)[500:], emb[:, 500:])
    assert lookup.centroids == {}
