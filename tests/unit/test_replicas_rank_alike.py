"""N workers rank exactly like one (issue #9): ranking reads no cache whose content depends on
when it was read. Two replicas learn the same observations in the same order; one ranks after
every event (its caches are read, refreshed and read again all along), the other learns
silently and ranks at other moments. Both must then give every user the same lists."""

from __future__ import annotations

import numpy as np

from stream.domain.engine import Engine
from stream.domain.ranking import FEEDS, RankingProfile, rank_feeds
from stream.domain.relations import CoOccurrence
from tests.unit.fast_rank_workload import Shop, catalog_messages, feed_lists, learned_shop


def silent_replica(shop: Shop, read_every: int) -> Engine:
    """A replica fed the live one's observations, ranking one user every ``read_every``."""
    replica = Engine(ranking=RankingProfile(), feeds=FEEDS)
    for message in catalog_messages():
        replica.catalog.upsert(message)
    users = list(shop.profiles.values())
    for n, obs in enumerate(shop.observations):
        assert replica.learner.remote(obs)
        if read_every and n % read_every == 0:
            profile = users[n % len(users)]
            rank_feeds(
                profile, replica.catalog, replica.relations, replica.ranking, shop.now,
                replica.feeds, learned=replica.repeats, trending=replica.trending,
            )  # fmt: skip
    return replica


def test_replicas_with_the_same_observations_rank_alike_whenever_they_read() -> None:
    shop = learned_shop(n_events=2500)  # ranked after every event, as a worker does
    assert len(shop.observations) > 2000
    live = feed_lists(shop.engine, shop)
    assert sum(len(items) for items in live) > 1000
    for read_every in (0, 7, 97):
        assert feed_lists(silent_replica(shop, read_every), shop) == live


def test_cooccurrence_rows_do_not_depend_on_read_timing() -> None:
    rng = np.random.default_rng(4)
    reads, silent = CoOccurrence(), CoOccurrence()
    for _ in range(400):
        items = rng.choice(50, size=int(rng.integers(1, 4)), replace=False).tolist()
        context = rng.choice(50, size=3).tolist()
        for cooc in (reads, silent):
            cooc.observe(items, context, 1.0)
        reads.related(int(rng.integers(0, 50)))
    for q in range(50):
        a, b = reads.related(q), silent.related(q)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
