"""The fast ranking read path gives exactly what the old one gave, on a seeded workload.

The reference (``fast_rank_reference``) is the pre-change code; both run in the same test on
the same learned engine, so a speed-up that changes a list, a score or a reason fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain import ranking, relation_rows, scored_set, signals
from stream.domain.ranking import RankingProfile
from stream.domain.relation_rows import top_k_per_row
from stream.domain.relations import CoOccurrence
from tests.unit import fast_rank_reference as reference
from tests.unit.fast_rank_workload import Shop, feed_lists, learned_shop


@pytest.fixture(scope="module", params=[False, True], ids=["cooccurrence", "pfeed-blend"])
def shop(request: pytest.FixtureRequest) -> Shop:
    # relation_recent came after the reference code (fast_rank_reference): off, so both
    # paths compute the same signals (tests/unit/test_recent_relation.py covers it)
    return learned_shop(blend=request.param, ranking=RankingProfile(w_relation_recent=0.0))


def by_target(row: tuple[np.ndarray, np.ndarray]) -> dict[int, float]:
    return dict(zip(row[0].tolist(), row[1].tolist(), strict=True))


def test_every_relation_row_is_the_old_row(shop: Shop) -> None:
    relations = shop.engine.relations
    checked = 0
    for idx in range(len(shop.engine.catalog)):
        for role in ("view", "buy"):
            new = relations.related(idx, role)
            old = reference.related(relations, idx, role)
            assert new[0].tolist() == old[0].tolist()  # the same order, too
            assert new[1].tolist() == old[1].tolist()
            checked += old[0].size > 0
    assert checked > 200  # the workload really filled rows


def test_relation_scores_are_the_old_scores_bit_for_bit(shop: Shop) -> None:
    e = shop.engine
    for profile in shop.profiles.values():
        new = signals.relation_scores(profile, e.catalog, e.relations, e.ranking, shop.now)
        old = reference.relation_scores(profile, e.catalog, e.relations, e.ranking, shop.now)
        assert np.array_equal(new[2].targets, old[2].targets)
        assert np.array_equal(new[0], old[0]) and np.array_equal(new[1], old[1])
        for target in old[2].targets.tolist():
            assert new[2][target] == old[2][target]  # the query a reason names


def test_every_feed_list_is_the_old_list(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    e = shop.engine

    new = feed_lists(e, shop)
    monkeypatch.setattr(ranking, "candidate_signals", reference.candidate_signals)
    monkeypatch.setattr(scored_set.ScoredSet, "items", reference.items)
    old = feed_lists(e, shop)
    assert new == old
    assert sum(len(items) for items in new) > 1000


def test_a_row_is_the_old_row_after_every_kind_of_write() -> None:
    cooc = CoOccurrence(max_neighbours=8, top_k=3)
    rng = np.random.default_rng(1)
    for _ in range(300):  # rows overflow and are pruned many times
        items = rng.choice(30, size=int(rng.integers(1, 4)), replace=False).tolist()
        cooc.observe(items, rng.choice(30, size=2).tolist(), float(rng.choice([0.5, 1.0, 3.0])))
        q = int(rng.integers(0, 30))
        assert by_target(cooc.related(q)) == by_target(reference.cooc_related(cooc, q))


def test_top_k_per_row_keeps_the_strongest_of_long_rows_only() -> None:
    strength = np.array([0.1, 0.9, 0.5, 0.7, 0.3, 0.2, 0.8])
    sizes = np.array([4, 1, 2])  # rows: [.1 .9 .5 .7] [.3] [.2 .8]
    keep = top_k_per_row(strength, sizes, 2)
    assert keep is not None
    assert keep.tolist() == [False, True, False, True, True, True, True]
    assert top_k_per_row(strength, np.array([2, 2, 3]), 3) is None


def test_top_k_per_row_keeps_exactly_k_when_the_kth_value_ties() -> None:
    # row 0: a tie at its 2nd largest (0.5, 0.5); row 1: no tie
    strength = np.array([0.5, 0.9, 0.5, 0.1, 0.3, 0.8, 0.6])
    keep = top_k_per_row(strength, np.array([4, 3]), 2)
    assert keep is not None
    row0, row1 = keep[:4].tolist(), keep[4:].tolist()
    assert sum(row0) == 2 and row0[1] and not row0[3]  # 0.9 and one of the tied 0.5s
    assert row1 == [False, True, True]


def test_top_k_per_row_few_long_rows_pick_what_the_matrix_path_picks() -> None:
    # randomised: 0-8 long rows (the per-row path takes up to FEW_LONG_ROWS), coarse values so
    # some rows tie at the k-th (those go to the matrix path, whose pick is arbitrary)
    rng = np.random.default_rng(7)
    for _ in range(500):
        k = int(rng.integers(1, 6))
        sizes = rng.integers(0, 3 * k + 2, size=int(rng.integers(1, 10)))
        coarse = bool(rng.integers(0, 2))
        strength = (
            rng.integers(0, 6, size=int(sizes.sum())) / 5
            if coarse
            else rng.random(int(sizes.sum()))
        )
        new = top_k_per_row(strength, sizes, k)
        old = relation_rows._top_k_grid(strength, sizes, k)
        assert (new is None) == (old is None)
        if new is not None and old is not None:
            assert new.tolist() == old.tolist()
