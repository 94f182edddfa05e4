"""Producer duplicates (same topic and event id, a new offset) are skipped and counted once."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import orjson
import pytest

from stream.domain.catalog import Catalog
from stream.domain.dedup import BUCKET_MS, event_key, prune
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, UserProfile
from stream.plan import Record
from stream.settings import Settings
from tests.unit.test_erasure import T0, Worker

HOUR = 3_600_000
_offsets = itertools.count(1)


def engine(**config: Any) -> Engine:
    catalog = Catalog()
    for i in range(20):
        catalog.upsert({"item_id": f"i{i}", "attributes": {"category": [f"c{i % 4}"]}})
    return Engine(catalog=catalog, profile_config=replace(DEFAULT_PROFILE_CONFIG, **config))


def event(topic: str, event_id: str, ts: int, item: str = "i1", partition: int = 0) -> UserEvent:
    """A fresh record of the event: every call gets a new offset, as a producer's re-send does."""
    return UserEvent(
        topic, event_id, "u", ts, (item,), (1,), source=(topic, partition, next(_offsets))
    )


def test_a_resent_order_is_skipped_and_teaches_nothing() -> None:
    e = engine()
    first = e.step(None, "u", [event("orders", "o-1", T0)])
    before = first.state.to_dict()
    again = e.step(first.state, "u", [event("orders", "o-1", T0)])
    assert (again.applied, again.skipped, again.observations) == (0, [("orders", "duplicate")], [])
    assert again.recommendations == []  # nothing changed: nothing to answer
    assert again.state.to_dict() == before
    assert again.state.purchases["i1"][0] == 1.0


def test_a_copy_within_the_same_burst_is_skipped() -> None:
    result = engine().step(None, "u", [event("clicks", "c-1", T0), event("clicks", "c-1", T0)])
    assert (result.applied, result.skipped) == (1, [("clicks", "duplicate")])
    assert result.state.events == 1


def test_the_same_id_on_another_topic_is_another_event() -> None:
    """A shop may name a return after its order: (topic, event id) is the identity."""
    result = engine().step(None, "u", [event("orders", "o-1", T0), event("returns", "o-1", T0 + 1)])
    assert (result.applied, result.skipped) == (2, [])


def test_a_redelivered_record_is_a_replay_not_a_duplicate() -> None:
    e = engine()
    original = event("clicks", "c-1", T0)
    first = e.step(None, "u", [original])
    again = e.step(first.state, "u", [original])  # the same record: its offset was applied
    assert (again.replayed, again.skipped) == (1, [("clicks", "replay")])


def test_a_copy_from_beyond_the_window_is_applied_again() -> None:
    e = engine(dedup_window_ms=HOUR)
    state = e.step(None, "u", [event("clicks", "c-1", T0)]).state
    state = e.step(state, "u", [event("clicks", "c-2", T0 + HOUR + BUCKET_MS)]).state
    assert list(state.seen) == [str((T0 + HOUR + BUCKET_MS) // BUCKET_MS)]  # c-1's is gone
    late = e.step(state, "u", [event("clicks", "c-1", T0)])
    assert (late.applied, late.skipped) == (1, [])


def test_a_copy_within_the_window_is_caught_across_buckets() -> None:
    e = engine(dedup_window_ms=HOUR)
    state = e.step(None, "u", [event("clicks", "c-1", T0)]).state
    state = e.step(state, "u", [event("clicks", "c-2", T0 + HOUR - 1)]).state
    again = e.step(state, "u", [event("clicks", "c-1", T0)])
    assert (again.applied, again.skipped) == (0, [("clicks", "duplicate")])


def test_only_the_newest_cap_are_remembered() -> None:
    e = engine(max_seen=4)
    bursts = [event("clicks", f"c-{k}", T0 + k * BUCKET_MS) for k in range(6)]
    state = e.step(None, "u", bursts).state
    assert sorted(int(b) for b in state.seen) == [
        (T0 + k * BUCKET_MS) // BUCKET_MS for k in range(2, 6)
    ]
    old = e.step(state, "u", [event("clicks", "c-1", T0 + BUCKET_MS)])
    recent = e.step(old.state, "u", [event("clicks", "c-4", T0 + 4 * BUCKET_MS)])
    assert (old.applied, recent.skipped) == (1, [("clicks", "duplicate")])


def test_switched_off_every_copy_is_applied_and_nothing_is_stored() -> None:
    e = engine(dedup_window_ms=0)
    result = e.step(None, "u", [event("clicks", "c-1", T0), event("clicks", "c-1", T0)])
    assert (result.applied, result.skipped) == (2, [])
    assert result.state.seen == {} and "d" not in result.state.to_dict()


def test_what_is_remembered_does_not_depend_on_arrival_order() -> None:
    """Kafka orders a user's topics independently: any interleaving remembers the same set."""
    step = BUCKET_MS // 3
    clicks = [event("clicks", f"c-{k}", T0 + step * k, f"i{k}") for k in range(8)]
    orders = [event("orders", f"o-{k}", T0 + step * k + 5, f"i{k}", 1) for k in range(8)]
    e = engine(max_seen=6)
    in_time = e.step(None, "u", sorted(clicks + orders, key=lambda x: x.ts)).state.seen
    clicks_first = e.step(None, "u", clicks + orders).state.seen
    split = e.step(None, "u", orders[:5] + clicks)
    apart = e.step(split.state, "u", orders[5:]).state.seen
    assert in_time == clicks_first == apart and sum(map(len, in_time.values())) == 6
    assert list(in_time) == sorted(in_time, key=int)  # stored in time order whatever arrived


def test_the_list_survives_the_stored_form_and_old_profiles_read_without_it() -> None:
    state = engine().step(None, "u", [event("clicks", "c-1", T0)]).state
    assert UserProfile.from_bytes(state.to_bytes()).seen == state.seen != {}
    body = state.to_dict()
    del body["d"]  # a profile written before duplicates were tracked
    assert UserProfile.from_dict(body).seen == {}


def test_the_key_is_stable_and_fits_a_json_number() -> None:
    """Stored keys must match on every worker and release: pinned, and below 2**53."""
    assert event_key("orders", "o-1") == event_key("orders", "o-1") != event_key("returns", "o-1")
    assert event_key("clicks", "e-1") == 0x6CF0CC380AD4
    assert all(event_key("clicks", f"e{k}") < 2**48 for k in range(1000))


def test_prune_keeps_the_window_then_the_newest_buckets_then_the_highest_keys() -> None:
    seen = {"12": [5], "10": [1, 2], "11": [3, 4], "9": [0]}
    prune(seen, 12 * BUCKET_MS + 1, 2 * BUCKET_MS, 100)  # the window reaches bucket 10
    assert seen == {"10": [1, 2], "11": [3, 4], "12": [5]} and list(seen) == ["10", "11", "12"]
    prune(seen, 12 * BUCKET_MS + 1, 2 * BUCKET_MS, 4)
    assert seen == {"10": [2], "11": [3, 4], "12": [5]}
    prune(seen, 12 * BUCKET_MS + 1, 2 * BUCKET_MS, 2)
    assert seen == {"11": [4], "12": [5]}


def record(topic: str, offset: int, event_id: str, **fields: Any) -> Record:
    body = {"event_id": event_id, "user_id": "u1", "ts": T0, **fields}
    return Record(topic, 0, offset, b"u1", orjson.dumps(body), T0)


def count(w: Worker, name: str, topic: str) -> float:
    value = w.pipeline.metrics.registry.get_sample_value(name, {"topic": topic})
    assert value is not None
    return value


def test_the_worker_counts_a_duplicate_as_processed_and_sends_no_list_for_it() -> None:
    w = Worker()
    w.batch(
        record("clicks", 1, "c-1", item_id="i1"),
        record("orders", 2, "o-1", items=[{"item_id": "i2"}]),
    )
    listed = len(w.sent)
    w.batch(record("orders", 3, "o-1", items=[{"item_id": "i2"}]))  # the order, sent again
    w.batch(record("clicks", 1, "c-1", item_id="i1"))  # a re-delivery of the first record
    assert len(w.sent) == listed  # no list, no changelog write: nothing changed
    assert count(w, "recstream_events_duplicate_total", "orders") == 1
    assert count(w, "recstream_events_duplicate_total", "clicks") == 0
    assert count(w, "recstream_events_replayed_total", "clicks") == 1
    assert count(w, "recstream_events_replayed_total", "orders") == 0
    for topic in ("clicks", "orders"):
        consumed = count(w, "recstream_events_consumed_total", topic)
        assert consumed == count(w, "recstream_events_processed_total", topic) == 2
    profile = w.profile()
    assert profile is not None and profile.purchases["i2"][0] == 1.0


def test_a_mixed_burst_counts_replays_under_their_own_topics() -> None:
    """The per-topic replay count once took every replay of a burst as its first event's topic."""
    w = Worker()
    first = [
        record("clicks", 1, "c-1", item_id="i1"),
        record("orders", 2, "o-1", items=[{"item_id": "i2"}]),
    ]
    w.batch(*first)
    w.batch(*first)
    assert count(w, "recstream_events_replayed_total", "clicks") == 1
    assert count(w, "recstream_events_replayed_total", "orders") == 1


@pytest.mark.parametrize(("value", "window_s"), [(None, 3600), ("0", 0), ("600", 600)])
def test_the_window_is_a_setting(value: str | None, window_s: int) -> None:
    env = {} if value is None else {"RECSTREAM_DEDUP_WINDOW_S": value}
    assert Settings.from_env(env).dedup_window_s == window_s


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="RECSTREAM_DEDUP_WINDOW_S"):
        Settings.from_env({"RECSTREAM_DEDUP_WINDOW_S": "-1"})
