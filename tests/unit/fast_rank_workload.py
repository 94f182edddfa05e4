"""A seeded shop for the fast-path tests: a catalog, a Zipf stream of several event types and an
engine that has learned from it (co-occurrence, popularity, trending, repeat propensities)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.domain.blended import blend_into
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.learning import Observation
from stream.domain.lookup import QueryTargetLookup
from stream.domain.profile import UserProfile
from stream.domain.ranking import FEEDS, RankingProfile, rank_feeds

T0 = 1_700_000_000_000
N_ITEMS = 400


def catalog_messages(seed: int = 3) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    out: list[dict[str, object]] = []
    for i in range(N_ITEMS):
        out.append(
            {
                "item_id": f"p{i}",
                "title": f"Product {i}",
                "ts": T0 - int(rng.integers(0, 30)) * 86_400_000,
                "attributes": {
                    "category": [f"Dept {i % 4}", f"Aisle {i % 13}"],
                    "brand": f"Brand{i % 17}",
                    "price": float(rng.choice([0.9, 2.5, 4.0, 9.0, 19.0])),
                    "colour": ["red", "green", "blue"][i % 3],
                },
                "flags": {"deal": bool(rng.random() < 0.2), "new": bool(rng.random() < 0.1)},
            }
        )
    return out


def events(n: int, users: int = 60, seed: int = 5) -> list[UserEvent]:
    """``n`` events in time order: clicks, dwell, cart adds, orders; Zipf item popularity."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, N_ITEMS + 1) ** 1.1
    weights /= weights.sum()
    ts = T0
    out = []
    for k in range(n):
        ts += int(rng.integers(1, 120_000))
        user = f"u{int(rng.integers(0, users))}"
        kind = rng.choice(["clicks", "dwell", "carts", "orders"], p=[0.6, 0.15, 0.15, 0.1])
        size = int(rng.integers(1, 4)) if kind == "orders" else 1
        items = tuple(f"p{int(i)}" for i in rng.choice(N_ITEMS, size=size, p=weights))
        out.append(
            UserEvent(
                topic=str(kind),
                event_id=f"e{k}",
                user_id=user,
                ts=ts,
                item_ids=items,
                quantities=(1,) * len(items),
                action="add" if kind == "carts" else None,
                dwell_ms=int(rng.integers(1_000, 60_000)) if kind == "dwell" else 0,
                source=(str(kind), 0, k),
            )
        )
    return out


@dataclass
class Shop:
    engine: Engine
    profiles: dict[str, UserProfile]
    now: float
    #: what the engine learned, in order (what it published on `learned`)
    observations: list[Observation]


def learned_shop(
    n_events: int = 3000,
    blend: bool = False,
    seed: int = 5,
    ranking: RankingProfile | None = None,
) -> Shop:
    """An engine after ``n_events`` (each applied and ranked, as a worker does)."""
    engine = Engine(ranking=ranking or RankingProfile(), feeds=FEEDS)
    for message in catalog_messages():
        engine.catalog.upsert(message)
    if blend:
        ids = engine.catalog.ids
        emb = np.random.default_rng(seed).normal(size=(3, len(ids), 16)).astype(np.float32)
        blend_into(engine, QueryTargetLookup(ids, emb, k=12).build())
    profiles: dict[str, UserProfile] = {}
    observations: list[Observation] = []
    stream = events(n_events, seed=seed)
    for event in stream:
        result = engine.step(profiles.get(event.user_id), event.user_id, [event])
        profiles[event.user_id] = result.state
        observations += result.observations
    return Shop(engine, profiles, float(stream[-1].ts), observations)


def feed_lists(engine: Engine, shop: Shop) -> list[list[tuple[str, float, list[str]]]]:
    """Each feed list of every user, as ``engine`` ranks it now: ids, scores and reasons."""
    out = []
    for profile in shop.profiles.values():
        feeds = rank_feeds(
            profile, engine.catalog, engine.relations, engine.ranking, shop.now, engine.feeds,
            engine.profile_config, learned=engine.repeats, trending=engine.trending,
        )  # fmt: skip
        out += [[(i.item_id, i.score, i.reasons) for i in items] for items in feeds.values()]
    return out
