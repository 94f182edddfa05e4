"""Diversity (category and brand caps, MMR), ties, empty candidates, one scored set per burst."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import stream.domain.ranking as ranking_module
from stream.domain.catalog import PAD, Catalog
from stream.domain.diversity import Caps, diversify, similarity
from stream.domain.engine import Engine, Trigger
from stream.domain.profile import UserProfile
from stream.domain.ranking import FEEDS, RankingProfile, rank, rank_feeds
from stream.domain.relations import CoOccurrence

NOW = 1_700_000_000_000


def catalog_of(
    rows: list[tuple[str, str, str, float]], deal: frozenset[str] = frozenset()
) -> Catalog:
    """(item_id, category, brand, popularity) rows."""
    catalog = Catalog()
    for item_id, category, brand, pop in rows:
        idx = catalog.upsert(
            {
                "item_id": item_id,
                "attributes": {"category": category, "brand": brand},
                "flags": {"deal": item_id in deal},
            }
        )
        catalog.record_interaction([idx], pop)
    return catalog


def ids(catalog: Catalog, rp: RankingProfile, profile: UserProfile | None = None) -> list[str]:
    user = profile or UserProfile("u")
    return [i.item_id for i in rank(user, catalog, CoOccurrence(), rp, NOW)]


def test_brand_cap_with_overflow_fill() -> None:
    rows = [(f"a{i}", f"c{i}", "acme", 100.0 - i) for i in range(5)]
    rows += [(f"z{i}", f"d{i}", "zeta", 10.0 - i) for i in range(2)]
    catalog = catalog_of(rows)
    rp = RankingProfile(max_per_category=10, max_per_brand=2, size=6)
    assert ids(catalog, rp) == ["a0", "a1", "z0", "z1", "a2", "a3"]
    assert ids(catalog, replace(rp, max_per_brand=None)) == ["a0", "a1", "a2", "a3", "a4", "z0"]


def test_category_and_brand_caps_together() -> None:
    rows = [
        ("a0", "shoes", "acme", 100.0),
        ("a1", "shoes", "acme", 99.0),
        ("a2", "socks", "acme", 98.0),
        ("z0", "shoes", "zeta", 97.0),
        ("z1", "socks", "zeta", 96.0),
        ("y0", "hats", "yolo", 1.0),
    ]
    rp = RankingProfile(max_per_category=1, max_per_brand=1, size=3)
    assert ids(catalog_of(rows), rp) == ["a0", "z1", "y0"]


def test_items_bought_again_are_exempt_from_the_caps() -> None:
    rows = [(f"m{i}", "milk", "acme", 50.0 - i) for i in range(4)] + [("x", "bread", "b", 1.0)]
    catalog = catalog_of(rows)
    profile = UserProfile("u", purchases={"m3": [2.0, float(NOW - 10**9)]})
    rp = RankingProfile(max_per_category=2, filter_purchased=False, w_repeat=0.0001, size=5)
    got = ids(catalog, rp, profile)
    assert got[:4] == ["m0", "m1", "m3", "x"]  # m3 (bought) passes the full milk cap


def test_similarity_is_cosine_of_feature_sets() -> None:
    feats = np.array([[1, 2, PAD], [1, 3, PAD], [4, PAD, PAD], [PAD, PAD, PAD]])
    sim = similarity(feats)
    assert sim[0, 0] == pytest.approx(1.0)
    assert sim[0, 1] == pytest.approx(0.5)
    assert sim[0, 2] == 0.0 and sim[3].sum() == 0.0  # nothing shared, no features


def test_mmr_lambda_one_is_score_order_and_lower_lambda_diversifies() -> None:
    rows = [(f"a{i}", "shoes", "acme", 100.0 - i) for i in range(4)]
    rows += [(f"z{i}", "hats", "zeta", 90.0 - i) for i in range(4)]
    catalog = catalog_of(rows)
    rp = RankingProfile(max_per_category=100, size=8)
    by_score = ["a0", "a1", "a2", "a3", "z0", "z1", "z2", "z3"]
    assert ids(catalog, rp) == by_score
    assert ids(catalog, replace(rp, mmr_lambda=1.0)) == by_score
    mmr = ids(catalog, replace(rp, mmr_lambda=0.5))
    assert mmr[:2] == ["a0", "z0"]  # the second pick avoids a copy of the first
    assert sorted(mmr) == sorted(by_score)
    assert ids(catalog, replace(rp, mmr_lambda=0.5, size=3)) == mmr[:3]


def test_mmr_respects_the_caps() -> None:
    rows = [(f"a{i}", "shoes", f"b{i}", 100.0 - i) for i in range(5)] + [("h", "hats", "x", 1.0)]
    rp = RankingProfile(max_per_category=2, mmr_lambda=0.3, size=4)
    got = ids(catalog_of(rows), rp)
    assert got[:3].count("h") == 1 and len(got) == 4
    assert sum(i.startswith("a") for i in got[:3]) == 2


def test_diversify_direct_ties_keep_the_given_order() -> None:
    order = np.array([2, 0, 1])
    caps = Caps((np.array([7, 7, 7]),), (None,))
    exempt = np.zeros(3, dtype=bool)
    score = np.ones(3)
    feats = np.array([[1], [1], [1]])
    assert diversify(order, caps, exempt, 3) == [2, 0, 1]
    assert diversify(order, caps, exempt, 3, score, feats, 0.5) == [2, 0, 1]
    assert diversify(order, caps, exempt, 0) == []
    assert diversify(np.zeros(0, dtype=np.int64), caps, exempt, 5) == []


def test_empty_candidates_give_empty_lists_for_every_feed() -> None:
    catalog = catalog_of([("a", "c", "b", 1.0)])
    catalog.set_stock("a", 0)
    lists = rank_feeds(UserProfile("u"), catalog, CoOccurrence(), RankingProfile(), NOW, FEEDS)
    assert lists == {feed: [] for feed in FEEDS}
    assert rank_feeds(
        UserProfile("u"), Catalog(), CoOccurrence(), RankingProfile(), NOW, FEEDS
    ) == {feed: [] for feed in FEEDS}


def test_feeds_are_masks_over_one_scored_set() -> None:
    rows = [(f"i{i}", f"c{i}", "b", float(i)) for i in range(10)]
    catalog = catalog_of(rows, deal={"i2", "i5", "i7"})
    lists = rank_feeds(UserProfile("u"), catalog, CoOccurrence(), RankingProfile(), NOW, FEEDS)
    for_you = {i.item_id: i.score for i in lists["for_you"]}
    deals = lists["deals_for_you"]
    assert [i.item_id for i in deals] == ["i7", "i5", "i2"]
    assert all(for_you[i.item_id] == i.score for i in deals)  # same scores, masked
    assert lists["new_for_you"] == []


def test_engine_scores_candidates_once_per_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = ranking_module.candidate_signals

    def counting(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append("x")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ranking_module, "candidate_signals", counting)
    engine = Engine(catalog=catalog_of([(f"i{i}", f"c{i}", "b", 1.0) for i in range(5)]))
    engine.feeds = FEEDS
    recs = engine.recommend(UserProfile("u"), Trigger("e", "clicks", NOW))
    assert [r.feed for r in recs] == list(FEEDS)
    assert len(calls) == 1


def test_mmr_on_a_large_head_looks_at_a_bounded_pool() -> None:
    n = 500
    order = np.arange(n)
    features = np.tile(np.array([[1, 2, 3]]), (n, 1))
    features[7::7, 2] = 4  # every 7th item (not the first) differs a little
    caps = Caps((np.full(n, 9),), (3,))
    got = diversify(order, caps, np.zeros(n, dtype=bool), 10, -order.astype(float), features, 0.2)
    # the best; the best that differs from it; then (all alike now) score order until the cap
    # of 3 is full, then the capped overflow in score order
    assert got == [0, 7, 1, 2, 3, 4, 5, 6, 8, 9]
    wide = diversify(order, caps, np.zeros(n, dtype=bool), 10, -order.astype(float), features, 0.0)
    assert wide[:3] == [0, 7, 1] and max(wide) < 50  # λ = 0 still stays in the pool


def test_caps_that_a_short_prefix_cannot_fill_walk_the_whole_order() -> None:
    # the first 150 in score order share one category (cap 3): the list must reach past them
    n = 200
    category = np.array([7] * 150 + list(range(100, 150)), dtype=np.int64)
    caps = Caps([category], [3])
    free = np.zeros(n, dtype=bool)
    order = np.arange(n)
    assert diversify(order, caps, free, 10) == [0, 1, 2, *range(150, 157)]
    # one category only: the caps leave it short, the capped fill it in score order
    one = Caps([np.full(n, 7, dtype=np.int64)], [3])
    assert diversify(order, one, free, 10) == list(range(10))
    # exempt items are never capped, wherever they sit
    free[[5, 120]] = True
    assert diversify(order, caps, free, 6) == [0, 1, 2, 5, 120, 150]
