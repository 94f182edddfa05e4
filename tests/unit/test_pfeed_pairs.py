"""Training pairs and the offline metric of the Pfeed encoder (numpy only, no torch)."""

from __future__ import annotations

import numpy as np

from models.pfeed import offline
from models.pfeed.pairs import Corpus, PairSet, basket_pairs, relation_kind, sequence_pairs

CATALOG = [{"item_id": str(i)} for i in range(6)]


def order(user: str, ts: int, *items: int) -> dict[str, object]:
    return {
        "topic": "orders",
        "user_id": user,
        "ts": ts,
        "items": [{"item_id": str(i), "quantity": 1} for i in items],
    }


def click(user: str, ts: int, item: int) -> dict[str, object]:
    return {"topic": "clicks", "user_id": user, "ts": ts, "item_id": str(item)}


def test_basket_pairs_stay_within_same_or_next_basket_and_skip_self() -> None:
    corpus = Corpus.of({"s": CATALOG})
    events = [order("a", 1, 0, 1), order("a", 2, 2), order("a", 3, 5), order("b", 1, 3, 4)]
    pairs = basket_pairs(events, corpus, "s", per_query=8, seed=0)
    allowed = {0: {1, 2}, 1: {0, 2}, 2: {5}, 3: {4}, 4: {3}}
    assert len(pairs) > 0 and pairs.role == "buy"
    for q, t in zip(pairs.query.tolist(), pairs.target.tolist(), strict=True):
        assert t in allowed[q]
    assert (np.diff(pairs.ts) >= 0).all()
    again = basket_pairs(events, corpus, "s", per_query=8, seed=0)
    assert np.array_equal(again.target, pairs.target)


def test_sequence_pairs_link_views_and_buys_to_the_next_buys() -> None:
    corpus = Corpus.of({"s": CATALOG})
    events = [click("u", 1, 0), order("u", 2, 1), click("u", 3, 2), order("u", 4, 3)]
    views, buys = sequence_pairs(events, corpus, "s", window=1)
    assert list(zip(views.query.tolist(), views.target.tolist(), strict=True)) == [(0, 1), (2, 3)]
    assert list(zip(buys.query.tolist(), buys.target.tolist(), strict=True)) == [(1, 3)]


def test_split_holds_out_the_latest_pairs() -> None:
    pairs = PairSet("x", "buy", np.arange(10), np.arange(10) + 1, np.arange(10) * 100)
    train, test = pairs.split(0.2)
    assert train.ts.max() < test.ts.min() and len(test) == 2


def test_relation_kind_by_distinct_degrees() -> None:
    q = np.array([0, 1, 1, 3, 4])
    t = np.array([5, 6, 7, 8, 8])
    pairs = PairSet("x", "buy", q, t, np.zeros(5))
    assert relation_kind(pairs, pairs).tolist() == ["1→1", "1→n", "1→n", "m→1", "m→1"]


def test_hits_rank_the_true_target_among_the_pool_with_expected_ties() -> None:
    task = offline.Task(
        "x",
        "buy",
        np.array([0, 0]),
        np.array([1, 2]),
        np.arange(5),
        np.array(["1→n", "1→n"]),
        np.array([False, True]),
    )
    scores = np.array([9.0, 5.0, 1.0, 1.0, 1.0])  # item 1 best, items 2-4 tie
    hit = offline.hits(task, lambda q, pool: np.tile(scores[pool], (q.size, 1)), ks=(1, 2))
    assert hit[1].tolist() == [1.0, 0.0]  # the query itself (score 9) is excluded
    assert np.isclose(hit[2][1], 1 / 3)  # one slot left for three tied items
    table = offline.summarise(task, hit)
    assert table["all"]["recall@1"] == 0.5 and table["cold target"]["pairs"] == 1


def test_cooccurrence_scorer_counts_training_pairs() -> None:
    train = PairSet("x", "buy", np.array([0, 0, 0, 1]), np.array([1, 1, 2, 2]), np.zeros(4))
    scores = offline.cooccurrence_scorer(train, 4)(np.array([0]), np.arange(4))
    assert scores[0, 1] > scores[0, 2] > 0 and scores[0, 3] == 0
