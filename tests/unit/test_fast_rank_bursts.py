"""Burst by burst, under six ranking profiles and both relation sources, the engine's lists are
the reference code's lists: ids, scores (bit for bit) and reasons.

``test_fast_rank`` compares the two read paths once, on the final state of one profile. A cache
that goes stale (a lookup row kept across a lookup change, a top list that missed a grown
item, a reason read from the wrong query) shows only *between* writes, so here the stream is
replayed through ``Engine.step`` and every third burst's lists (every feed) are compared with
the reference's (``fast_rank_reference``: the old code, loops and all) on the state of that
moment. The lookup is swapped for a new one half way, so a lookup-version change is crossed.
"""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain import ranking, scored_set
from stream.domain.blended import blend_into
from stream.domain.engine import Engine
from stream.domain.lookup import QueryTargetLookup
from stream.domain.profile import UserProfile
from stream.domain.ranking import FEEDS, RankingProfile, rank_feeds
from stream.domain.ranking_profile import Boost, FeedRules
from tests.unit import fast_rank_reference as reference
from tests.unit.fast_rank_workload import catalog_messages, events

#: relation_recent came after the reference code: off in every profile (see test_fast_rank)
_BASE = {"w_relation_recent": 0.0}
PROFILES: dict[str, RankingProfile] = {
    "default": RankingProfile(**_BASE),
    "grocery": RankingProfile(
        name="grocery", filter_purchased=False, w_repeat=20.0, max_per_category=10, **_BASE
    ),
    "films": RankingProfile(name="films", filter_seen=True, w_repeat=0.0, w_affinity=0.3, **_BASE),
    "diverse": RankingProfile(
        name="diverse",
        max_per_brand=2,
        mmr_lambda=0.7,
        w_trend_day=0.5,
        w_trend_week=0.3,
        w_price_fit=0.4,
        w_freshness=0.3,
        **_BASE,
    ),
    "session": RankingProfile(
        name="session", w_relation_long=0.0, query_items=5, seen_placement="mixed", **_BASE
    ),
    "merchandised": RankingProfile(
        name="merchandised",
        rules=FeedRules(
            boosts=(Boost("deal", 1.5),),
            buries=(Boost("brand:brand3", 0.5),),
            pins=("p7", "p150"),
            exclude_categories=("category:aisle 5",),
        ),
        **_BASE,
    ),
}
N_EVENTS = 600
EVERY = 3

Lists = list[list[tuple[str, float, list[str]]]]


def _lists(engine: Engine, profile: UserProfile, now: float) -> Lists:
    feeds = rank_feeds(
        profile, engine.catalog, engine.relations, engine.ranking, now, engine.feeds,
        engine.profile_config, learned=engine.repeats, trending=engine.trending,
    )  # fmt: skip
    return [[(i.item_id, i.score, i.reasons) for i in items] for items in feeds.values()]


def _lookup(engine: Engine, seed: int) -> QueryTargetLookup:
    ids = engine.catalog.ids
    emb = np.random.default_rng(seed).normal(size=(3, len(ids), 16)).astype(np.float32)
    return QueryTargetLookup(ids, emb, k=12).build()


@pytest.mark.parametrize("blend", [False, True], ids=["cooccurrence", "pfeed-blend"])
@pytest.mark.parametrize("name", list(PROFILES))
def test_every_burst_lists_what_the_reference_lists(
    name: str, blend: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(ranking=PROFILES[name], feeds=FEEDS)
    for message in catalog_messages():
        engine.catalog.upsert(message)
    if blend:
        blend_into(engine, _lookup(engine, 5))
    profiles: dict[str, UserProfile] = {}
    compared = shown = 0
    for n, event in enumerate(events(N_EVENTS, seed=11)):
        if blend and n == N_EVENTS // 2:
            blend_into(engine, _lookup(engine, 6))  # a new lookup version mid-stream
        profile = engine.step(profiles.get(event.user_id), event.user_id, [event]).state
        profiles[event.user_id] = profile
        if n % EVERY:
            continue
        new = _lists(engine, profile, float(event.ts))
        with monkeypatch.context() as m:
            m.setattr(ranking, "candidate_signals", reference.candidate_signals)
            m.setattr(scored_set.ScoredSet, "items", reference.items)
            old = _lists(engine, profile, float(event.ts))
        assert new == old, f"burst {n} ({event.topic} by {event.user_id})"
        compared += len(new)
        shown += sum(len(items) for items in new)
    assert compared == len(FEEDS) * (N_EVENTS // EVERY)
    assert shown > 3 * compared  # real lists, not empty ones
