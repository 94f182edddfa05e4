"""Engine.step: coalescing, versions, replays, output messages, shared read models, user vectors."""

from __future__ import annotations

import math

import pytest

from stream.adapters.validation import get_validators
from stream.domain.catalog import Catalog
from stream.domain.dense import DIM, user_vector
from stream.domain.engine import Engine, Trigger
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile
from stream.domain.ranking import FEEDS, RankingProfile
from stream.domain.relations import CoOccurrence

T0 = 1_700_000_000_000
MIN = 60_000


def make_engine(feeds: tuple[str, ...] = FEEDS) -> Engine:
    catalog = Catalog()
    for i in range(12):
        catalog.upsert(
            {
                "item_id": f"i{i}",
                "title": f"Item {i}",
                "attributes": {"category": f"c{i % 3}", "brand": f"b{i % 2}", "price": 10 + i},
                "flags": {"deal": i % 3 == 0, "new": i % 4 == 0},
            }
        )
    return Engine(
        catalog=catalog,
        relations=CoOccurrence(),
        ranking=RankingProfile(name="test", version=4),
        variant="B",
        feeds=feeds,
    )


def event(
    topic: str,
    n: int,
    item: str | None = "i1",
    *,
    ts: int | None = None,
    action: str | None = None,
    offset: int | None = None,
    partition: int = 0,
    user: str = "u1",
) -> UserEvent:
    items = (item,) if item else ()
    return UserEvent(
        topic=topic,
        event_id=f"{topic}-{n}",
        user_id=user,
        ts=T0 + n * 1000 if ts is None else ts,
        item_ids=items,
        quantities=(1,) * len(items),
        action=action,
        dwell_ms=15_000 if topic == "dwell" else 0,
        source=None if offset is None else (topic, partition, offset),
    )


def burst() -> list[UserEvent]:
    return [
        event("clicks", 1, "i1", offset=10),
        event("dwell", 2, "i1", offset=3),
        event("clicks", 3, "i4", offset=11),
        event("carts", 4, "i4", action="add", offset=7),
    ]


def test_burst_gives_one_recommendation_per_feed() -> None:
    engine = make_engine()
    events = burst()
    result = engine.step(None, "u1", events)
    assert result.applied == 4 and result.replayed == 0
    assert [rec.feed for rec in result.recommendations] == list(FEEDS)
    last = events[-1]
    for rec in result.recommendations:
        assert rec.trigger == Trigger(last.event_id, "carts", last.ts)
        assert rec.user_id == "u1"
        assert rec.profile == "test@4"
        assert rec.variant == "B"
        assert rec.state_version == 1
        assert rec.items, rec.feed
    assert result.state.version == 1
    assert result.state.events == 4
    for_you = result.recommendations[0]
    assert result.state.last_items == [item.item_id for item in for_you.items]
    deals = result.recommendations[1]
    assert all(int(item.item_id[1:]) % 3 == 0 for item in deals.items)


def test_single_feed_engine_gives_one_recommendation() -> None:
    engine = make_engine(feeds=("for_you",))
    result = engine.step(None, "u1", burst())
    assert len(result.recommendations) == 1
    assert result.recommendations[0].feed == "for_you"


def test_state_version_counts_applied_steps_only() -> None:
    engine = make_engine()
    first = engine.step(None, "u1", burst())
    assert first.state.version == 1
    replay = engine.step(first.state, "u1", burst())
    assert replay.applied == 0 and replay.replayed == 4
    assert replay.recommendations == []
    assert replay.state.version == 1
    assert replay.state.events == 4
    mixed = engine.step(
        replay.state,
        "u1",
        [event("clicks", 1, "i1", offset=10), event("clicks", 9, "i9", offset=12)],
    )
    assert mixed.applied == 1 and mixed.replayed == 1
    assert mixed.state.version == 2
    assert [rec.state_version for rec in mixed.recommendations] == [2, 2, 2]
    assert mixed.recommendations[0].trigger.event_id == "clicks-9"


def test_replay_leaves_profile_bytes_unchanged() -> None:
    engine = make_engine()
    state = engine.step(None, "u1", burst()).state
    snapshot = state.to_bytes()
    engine.step(state, "u1", burst())
    assert state.to_bytes() == snapshot


def test_replay_does_not_inflate_shared_read_models() -> None:
    """At-least-once delivery: a replayed event must not count twice in popularity/relations."""
    engine = make_engine()
    state = engine.step(None, "u1", burst()).state
    popularity = engine.catalog.popularity.copy()
    pairs = {k: dict(v) for k, v in engine.relations.pairs.items()}
    engine.step(state, "u1", burst())
    assert engine.catalog.popularity.tolist() == popularity.tolist()
    assert engine.relations.pairs == pairs


def test_empty_burst_gives_nothing() -> None:
    result = make_engine().step(None, "u1", [])
    assert result.recommendations == [] and result.applied == 0
    assert result.state.user_id == "u1" and result.state.version == 0


def test_recommendation_message_validates() -> None:
    engine = make_engine()
    validators = get_validators()
    result = engine.step(None, "u1", burst())
    last_ts = burst()[-1].ts
    for rec in result.recommendations:
        msg = rec.to_message(emitted_at_ms=last_ts + 25)
        validators.validate("recommendations", msg)
        assert msg["emitted_at"] == last_ts + 25
        assert msg["state_version"] == 1
        assert msg["feed"] == rec.feed and msg["profile"] == "test@4"
        assert msg["trigger"] == {"event_id": "carts-4", "topic": "carts", "ts": last_ts}
        assert [item["item_id"] for item in msg["items"]] == [i.item_id for i in rec.items]
        assert all(isinstance(item["score"], float) for item in msg["items"])
        # latency is measured from the broker's receive time when it is known
        timed = rec.to_message(emitted_at_ms=T0 + 500, received_ms=T0 + 480)
        validators.validate("recommendations", timed)
        assert timed["latency_ms"] == 20
    # a clock behind the receive time never gives negative latency
    msg = result.recommendations[0].to_message(emitted_at_ms=T0, received_ms=T0 + 1000)
    assert msg["latency_ms"] == 0
    validators.validate("recommendations", msg)


def test_cold_user_message_validates() -> None:
    engine = make_engine()
    result = engine.step(None, "u9", [event("searches", 1, None, offset=0, user="u9")])
    assert len(result.recommendations) == 3
    for rec in result.recommendations:
        get_validators().validate("recommendations", rec.to_message(T0 + 5000))


# -- learn -----------------------------------------------------------------------------------------
def test_learn_updates_popularity_by_event_type() -> None:
    engine = make_engine()
    profile = UserProfile(user_id="u1")
    idx = engine.catalog.index
    engine.learn(profile, event("clicks", 1, "i1"))
    engine.learn(profile, event("dwell", 2, "i2"))
    engine.learn(profile, event("carts", 3, "i3", action="add"))
    engine.learn(profile, event("carts", 4, "i3", action="remove"))
    engine.learn(profile, event("returns", 5, "i5"))
    engine.learn(profile, UserEvent("orders", "o", "u1", T0, ("i6", "i7"), (1, 4)))
    engine.learn(profile, event("clicks", 6, "unknown"))
    pop = engine.catalog.popularity
    assert pop[idx["i1"]] == 1.0
    assert pop[idx["i2"]] == 0.5
    assert pop[idx["i3"]] == 2.0  # the removal adds nothing
    assert pop[idx["i5"]] == 0.0
    assert pop[idx["i6"]] == 3.0 and pop[idx["i7"]] == 3.0
    assert pop[: len(engine.catalog)].sum() == pytest.approx(9.5)


def test_learn_relates_basket_items_and_recent_views() -> None:
    engine = make_engine()
    idx = engine.catalog.index
    relations = engine.relations
    assert isinstance(relations, CoOccurrence)
    order = UserEvent("orders", "o", "u1", T0, ("i1", "i2"), (1, 1))
    engine.learn(UserProfile(user_id="u1"), order)
    assert relations.related(idx["i1"])[0].tolist() == [idx["i2"]]
    assert relations.related(idx["i2"])[0].tolist() == [idx["i1"]]
    # a click relates to the user's views in the last hour, not to older ones
    profile = UserProfile(user_id="u2")
    engine.learn(profile, event("clicks", 1, "i8", ts=T0 - 2 * 3600 * 1000))
    engine.learn(profile, event("clicks", 2, "i5", ts=T0 - 10 * MIN))
    engine.learn(profile, event("clicks", 0, "i6", ts=T0))
    assert relations.related(idx["i6"])[0].tolist() == [idx["i5"]]
    assert idx["i6"] in relations.related(idx["i5"])[0].tolist()
    assert relations.related(idx["i8"])[0].tolist() == []


def test_step_learns_co_views_and_ranks_them() -> None:
    engine = make_engine(feeds=("for_you",))
    # another user views i2 then i10: the engine learns the pair
    engine.step(
        None,
        "u2",
        [
            event("clicks", 1, "i2", offset=0, user="u2"),
            event("clicks", 2, "i10", offset=1, user="u2"),
        ],
    )
    result = engine.step(None, "u1", [event("clicks", 3, "i2", offset=5)])
    items = result.recommendations[0].items
    related = [item for item in items if item.item_id == "i10"]
    assert related and related[0].reasons[0].startswith("related to 'Item 2' you viewed")


# -- dense user vector -----------------------------------------------------------------------------
def test_user_vector_unit_norm_deterministic_never_zero() -> None:
    engine = make_engine()
    state = engine.step(None, "u1", burst()).state
    now = T0 + 10_000
    vec = user_vector(state, now)
    assert len(vec) == DIM
    assert math.sqrt(sum(v * v for v in vec)) == pytest.approx(1.0)
    assert vec == user_vector(UserProfile.from_bytes(state.to_bytes()), now)
    assert any(abs(v) > 0 for v in vec[1:])  # not the fallback vector

    empty = user_vector(UserProfile(user_id="nobody"), now)
    assert math.sqrt(sum(v * v for v in empty)) == pytest.approx(1.0)
    assert empty == [1.0] + [0.0] * (DIM - 1)

    small = user_vector(state, now, dim=8)
    assert len(small) == 8
    assert math.sqrt(sum(v * v for v in small)) == pytest.approx(1.0)


def test_user_vector_similar_users_are_closer() -> None:
    engine = make_engine()
    a = engine.step(
        None, "a", [event("clicks", 1, "i1", user="a"), event("clicks", 2, "i3", user="a")]
    ).state
    b = engine.step(
        None, "b", [event("clicks", 1, "i1", user="b"), event("clicks", 2, "i7", user="b")]
    ).state
    c = engine.step(
        None, "c", [event("clicks", 1, "i2", user="c"), event("clicks", 2, "i8", user="c")]
    ).state
    now = T0 + 5000
    va, vb, vc = (user_vector(p, now) for p in (a, b, c))
    cos_ab = sum(x * y for x, y in zip(va, vb, strict=True))
    cos_ac = sum(x * y for x, y in zip(va, vc, strict=True))
    assert cos_ab > cos_ac


# -- refresh: a fresh list without an event to apply (stock-outs, the evaluator) ------------------
def test_refresh_reranks_a_stored_profile_without_applying_anything() -> None:
    engine = make_engine(feeds=("for_you",))
    first = engine.step(None, "u1", [event("clicks", 1, "i1", offset=1)])
    version, events = first.state.version, first.state.events
    engine.catalog.set_stock("i4", 0)
    refresh = UserEvent("refresh", "stock-9", "u1", T0 + 5 * MIN, ("i4",))
    result = engine.step(first.state, "u1", [refresh])
    assert result.applied == 0 and result.refreshed and not result.observations
    assert (result.state.version, result.state.events) == (version, events)
    (rec,) = result.recommendations
    assert rec.trigger.to_dict() == {"event_id": "stock-9", "topic": "stock", "ts": T0 + 5 * MIN}
    assert "i4" not in [item.item_id for item in rec.items]
    assert result.state.last_items == [item.item_id for item in rec.items]


def test_events_and_refreshes_in_one_burst_give_one_list_for_the_last_event() -> None:
    engine = make_engine(feeds=("for_you",))
    refresh = UserEvent("refresh", "stock-1", "u1", T0 + 500, ("i4",))
    result = engine.step(None, "u1", [refresh, event("clicks", 1, "i2", offset=3)])
    assert result.applied == 1 and not result.refreshed
    (rec,) = result.recommendations
    assert rec.trigger.event_id == "clicks-1"


def test_refresh_of_an_unknown_user_is_a_cold_start_list() -> None:
    engine = make_engine(feeds=("for_you",))
    result = engine.step(None, "new", [UserEvent("refresh", "r1", "new", T0, ())])
    assert result.refreshed and result.applied == 0
    assert len(result.recommendations[0].items) > 0


def test_a_coalesced_list_answers_the_newest_event_not_the_batch_last() -> None:
    """A batch interleaves a user's topics in fetch order: an order sent after a click can
    come first. The list names the newest event (by event time; the last of equals)."""
    engine = make_engine()
    order_first = [event("orders", 9, "i9", offset=1), event("clicks", 5, "i5", offset=2)]
    result = engine.step(None, "u1", order_first)
    assert {rec.trigger.event_id for rec in result.recommendations} == {"orders-9"}
    at = T0 + 20_000
    tied = [event("clicks", 8, "i2", offset=3, ts=at), event("clicks", 7, "i1", offset=4, ts=at)]
    result = engine.step(result.state, "u1", tied)
    assert {rec.trigger.event_id for rec in result.recommendations} == {"clicks-7"}
