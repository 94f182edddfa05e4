"""A worker restored from a `learned` snapshot and reading on from its positions learns exactly
what one that read every observation learned (``stream.domain.learned_snapshot``)."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain.engine import Engine
from stream.domain.learned_snapshot import SnapshotMismatch, capture, restore
from stream.domain.learning import Observation
from stream.domain.ranking import FEEDS, RankingProfile
from stream.domain.relations import CoOccurrence
from tests.unit.fast_rank_workload import Shop, catalog_messages, feed_lists, learned_shop


def replica(messages: list[dict[str, object]] | None = None) -> Engine:
    engine = Engine(ranking=RankingProfile(), feeds=FEEDS)
    for message in messages if messages is not None else catalog_messages():
        engine.catalog.upsert(message)
    return engine


def round_trip(engine: Engine, into: Engine) -> int:
    meta, arrays = capture(engine.learner)
    return restore(into.learner, meta, arrays)


def by_id(engine: Engine) -> dict[str, object]:
    """Everything the learner keeps, keyed by item id (catalog order may differ)."""
    cat = engine.catalog
    ids = cat.ids
    cooc = engine.learner.relations
    assert isinstance(cooc, CoOccurrence)
    trend = engine.trending
    return {
        "popularity": {ids[i]: float(cat.popularity[i]) for i in range(len(ids))},
        "trending": {ids[i]: trend.scores[:, i].tolist() for i in range(len(ids))},
        "t0": trend.t0,
        "counts": {ids[i]: c for i, c in cooc.counts.items()},
        "pairs": {ids[i]: [(ids[j], w) for j, w in row.items()] for i, row in cooc.pairs.items()},
        "repeats": engine.repeats.to_dict(),
        "seen": engine.learner.seen,
        "pending": engine.learner.pending,
        "applied": engine.learner.applied,
    }


@pytest.fixture(scope="module")
def shop() -> Shop:
    return learned_shop(n_events=1500)


@pytest.mark.parametrize("cut", [0, 1, 700])
def test_restored_replica_reading_on_learns_exactly_what_a_full_replay_did(
    shop: Shop, cut: int
) -> None:
    full = replica()
    for obs in shop.observations:
        full.learner.remote(obs)
    early = replica()
    for obs in shop.observations[:cut]:
        early.learner.remote(obs)
    restarted = replica()
    assert round_trip(early, restarted) == 0
    for obs in shop.observations[cut:]:
        restarted.learner.remote(obs)
    assert by_id(restarted) == by_id(full)
    lists = feed_lists(full, shop)
    assert sum(len(items) for items in lists) > 500
    assert feed_lists(restarted, shop) == lists


def test_another_catalog_order_and_a_deleted_item_map_by_id(shop: Shop) -> None:
    live = replica()
    for obs in shop.observations:
        live.learner.remote(obs)
    messages = catalog_messages()[::-1]
    gone = str(messages.pop(0)["item_id"])  # the last item no longer exists
    restarted = replica(messages)
    assert round_trip(live, restarted) == 1
    expected = by_id(live)
    got = by_id(restarted)
    popularity = expected["popularity"]
    assert isinstance(popularity, dict)
    del popularity[gone]
    assert got["popularity"] == popularity
    assert got["repeats"] == expected["repeats"]
    pairs = got["pairs"]
    assert isinstance(pairs, dict) and gone not in pairs
    assert all(gone not in [j for j, _ in row] for row in pairs.values())


def test_pending_echoes_stay_skipped_and_undelivered_ones_are_not_applied_twice() -> None:
    """A worker applied two of its own observations at once; the snapshot was taken before
    either echo was read. After the restart the delivered one's echo is skipped, and the
    undelivered one (its batch re-delivered, re-observed) is not applied a second time."""
    live = replica()
    first = Observation(("clicks", 0, 10), ("p1", "p2"), (), 1.0, "clicks", 1)
    second = Observation(("clicks", 0, 11), ("p3",), (), 1.0, "clicks", 2)
    assert live.learner.local(first) and live.learner.local(second)
    restarted = replica()
    round_trip(live, restarted)
    before = restarted.catalog.popularity.copy()
    assert not restarted.learner.remote(first)  # the echo of a delivered batch
    assert not restarted.learner.local(second)  # the re-delivered batch's observation
    assert not restarted.learner.remote(second)  # and its echo, published again
    assert np.array_equal(restarted.catalog.popularity, before)
    third = Observation(("clicks", 0, 12), ("p3",), (), 1.0, "clicks", 3)
    assert restarted.learner.remote(third)  # anything new still applies


def test_a_learner_that_applied_something_refuses_a_snapshot(shop: Shop) -> None:
    source = replica()
    busy = replica()
    busy.learner.remote(shop.observations[0])
    meta, arrays = capture(source.learner)
    with pytest.raises(SnapshotMismatch):
        restore(busy.learner, meta, arrays)
    with pytest.raises(SnapshotMismatch):
        restore(replica().learner, {**meta, "version": 99}, arrays)


@pytest.mark.parametrize(
    "damage",
    [
        lambda m, a: a.pop("popularity"),
        lambda m, a: a.update(popularity=a["popularity"][:-1]),
        lambda m, a: a.update(trending=a["trending"][:, :3]),
        lambda m, a: a.update(pair_sizes=a["pair_sizes"] + 1),
        lambda m, a: a.update(pair_partners=a["pair_partners"][:-1]),
        lambda m, a: m.update(seen={"clicks:0": "many"}),
        lambda m, a: m.update(repeats={"rebuy": {"items": {"p1": [1, 2, 3]}}}),
        lambda m, a: m.pop("ids"),
        lambda m, a: m["trending"].pop("horizons_ms"),
    ],
)
def test_a_damaged_snapshot_is_refused_and_leaves_the_learner_untouched(
    shop: Shop, damage: object
) -> None:
    live = replica()
    for obs in shop.observations[:300]:
        live.learner.remote(obs)
    meta, arrays = capture(live.learner)
    damage(meta, arrays)  # type: ignore[operator]
    fresh = replica()
    before = by_id(fresh)
    with pytest.raises(SnapshotMismatch):
        restore(fresh.learner, meta, arrays)
    assert by_id(fresh) == before
