"""The engine learns the same from a user's events whatever order their topics arrive in.

Kafka keeps one user's clicks in order and their orders in order, but not the two relative to each
other; a restarted or another worker interleaves them differently. Popularity, co-occurrence rows,
repeat propensities and the profile's learning memory must come out the same (within the bounds
``stream.domain.pairing`` documents: here one topic runs up to 55 minutes of event time ahead).
"""

from __future__ import annotations

import collections
import random

import numpy as np
import pytest

from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile
from stream.domain.relations import CoOccurrence

T0 = 1_700_000_000_000
MIN = 60_000
ITEMS = [f"i{n}" for n in range(16)]


def make_engine() -> Engine:
    catalog = Catalog()
    for n, item in enumerate(ITEMS):
        catalog.upsert({"item_id": item, "attributes": {"category": f"c{n % 3}"}})
    return Engine(catalog=catalog, relations=CoOccurrence())


def topics(seed: int, span_min: int = 180) -> tuple[list[UserEvent], list[UserEvent]]:
    """Two users' clicks and orders over an afternoon, each topic in time order."""
    rng = random.Random(seed)
    clicks, orders = [], []
    for n in range(60):
        user = f"u{n % 2}"
        ts = T0 + rng.randrange(0, span_min) * MIN
        if rng.random() < 0.6:
            clicks.append(UserEvent("clicks", f"c{n}", user, ts, (rng.choice(ITEMS),)))
        else:
            items = tuple(rng.sample(ITEMS, rng.choice([1, 2, 3])))
            orders.append(UserEvent("orders", f"o{n}", user, ts, items, (1,) * len(items)))
    return sorted(clicks, key=lambda e: e.ts), sorted(orders, key=lambda e: e.ts)


def ahead(first: list[UserEvent], second: list[UserEvent], lead_ms: int) -> list[UserEvent]:
    """Merge two topics, each in order, with ``first`` running up to ``lead_ms`` ahead."""
    out, i, j = [], 0, 0
    while i < len(first) or j < len(second):
        if j == len(second) or (i < len(first) and first[i].ts <= second[j].ts + lead_ms):
            out.append(first[i])
            i += 1
        else:
            out.append(second[j])
            j += 1
    return out


def learn(events: list[UserEvent]) -> tuple[Engine, dict[str, UserProfile], collections.Counter]:
    engine = make_engine()
    profiles: dict[str, UserProfile] = {}
    pairs: collections.Counter[tuple[str, str]] = collections.Counter()
    for e in events:
        result = engine.step(profiles.get(e.user_id), e.user_id, [e])
        profiles[e.user_id] = result.state
        for obs in result.observations:
            for a, b, w in obs.pairs:
                pairs[(a, b)] += w
    return engine, profiles, +pairs


def rows(engine: Engine) -> dict[int, dict[int, float]]:
    assert isinstance(engine.relations, CoOccurrence)
    return {i: row for i, row in engine.relations.pairs.items() if row}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clicks_first_orders_first_or_in_time_learn_the_same(seed: int) -> None:
    clicks, orders = topics(seed)
    in_time = sorted(clicks + orders, key=lambda e: e.ts)
    lead = 55 * MIN
    runs = [learn(ahead(clicks, orders, lead)), learn(ahead(orders, clicks, lead)), learn(in_time)]
    (ref, ref_profiles, ref_pairs), others = runs[-1], runs[:-1]
    assert ref_pairs and rows(ref)
    for engine, profiles, pairs in others:
        assert pairs == ref_pairs  # the same directed pairs, counted once each
        assert rows(engine) == rows(ref)
        assert engine.relations.counts == ref.relations.counts  # type: ignore[attr-defined]
        n = len(ref.catalog)
        assert np.array_equal(engine.catalog.popularity[:n], ref.catalog.popularity[:n])
        assert engine.repeats.to_dict() == ref.repeats.to_dict()
        for user, profile in profiles.items():
            assert profile.timeline == ref_profiles[user].timeline
            assert profile.firsts == ref_profiles[user].firsts


def test_topics_replayed_one_after_the_other_within_an_hour_learn_the_same() -> None:
    """A session shorter than the pairing window: any interleaving, even topic by topic."""
    clicks, orders = topics(5, span_min=50)
    in_time = sorted(clicks + orders, key=lambda e: e.ts)
    engine, _, pairs = learn(in_time)
    for events in (clicks + orders, orders + clicks):
        other, _, other_pairs = learn(events)
        assert other_pairs == pairs
        assert rows(other) == rows(engine)
        assert other.repeats.to_dict() == engine.repeats.to_dict()


def test_a_restarted_worker_that_reads_the_observations_back_learns_the_same() -> None:
    """What travels on `learned` (the observations' bytes) rebuilds the same read models."""
    from stream.domain.learning import Learner, Observation

    clicks, orders = topics(4)
    engine, _, _ = learn(ahead(orders, clicks, 30 * MIN))
    replayed = make_engine()
    reader = Learner(replayed.catalog, replayed.relations, replayed.repeats)
    profiles: dict[str, UserProfile] = {}
    writer = make_engine()
    for e in ahead(clicks, orders, 30 * MIN):
        result = writer.step(profiles.get(e.user_id), e.user_id, [e])
        profiles[e.user_id] = result.state
        for obs in result.observations:
            reader.remote(Observation.from_bytes(obs.to_bytes()))
    assert rows(replayed) == rows(engine)
    assert replayed.repeats.to_dict() == engine.repeats.to_dict()


def test_the_bounded_query_set_keeps_the_same_items_at_equal_times() -> None:
    """More same-second events than the query set holds (a MovieLens rating burst): which
    ones stay is decided by item, not by which topic delivered its events first."""
    ts = T0 + 5 * MIN
    clicks = [UserEvent("clicks", f"c{n}", "u", ts, (f"c{n:03}",)) for n in range(70)]
    orders = [UserEvent("orders", f"o{n}", "u", ts, (f"o{n:03}",), (1,)) for n in range(70)]
    _, first, _ = learn(clicks + orders)
    _, second, _ = learn(orders + clicks)
    assert len(first["u"].queries) == 100
    assert first["u"].queries == second["u"].queries
