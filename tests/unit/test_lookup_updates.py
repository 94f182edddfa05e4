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
