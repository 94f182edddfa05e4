"""ProfileRuntime + Pipeline without a broker: swaps between batches, variants, shadow, hits,
and the group consumer's dead letters for invalid bodies."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
import pytest

from stream.adapters.codec import Decoder
from stream.adapters.metrics import Metrics
from stream.adapters.profile_dead_letters import check, profile_batch_handler
from stream.adapters.profile_runtime import ProfileRuntime
from stream.adapters.state_store import MemoryStore
from stream.adapters.validation import get_validators
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.ranking import RankingProfile
from stream.pipeline import Pipeline
from stream.plan import Record
from stream.settings import Settings

T0 = 1_700_000_000_000
_offsets = itertools.count(100)


class Harness:
    """A pipeline on an in-memory store whose sends are collected instead of delivered."""

    def __init__(self) -> None:
        catalog = Catalog()
        for i in range(30):
            catalog.upsert(
                {
                    "item_id": f"i{i}",
                    "title": f"Item {i}",
                    "attributes": {"category": [f"c{i % 3}"], "brand": ["acme", "zen"][i % 2]},
                }
            )
        self.engine = Engine(catalog=catalog, ranking=RankingProfile())
        self.metrics = Metrics()
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.pipeline = Pipeline(
            self.engine,
            Decoder(get_validators(), 64 * 1024),
            MemoryStore(),
            self.send,
            None,
            self.metrics,
            self.caught_up,
        )
        self.pipeline.ready.set()
        self.runtime = ProfileRuntime(Settings(), self.engine, self.metrics)
        self.pipeline.profiles = self.runtime

    async def send(
        self, topic: str, key: bytes, value: bytes | None, partition: int | None
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def caught_up(self) -> bool:
        return True

    def push(self, body: dict[str, Any] | None, key: str = "default") -> str:
        value = None if body is None else orjson.dumps(body)
        return self.runtime.apply(key.encode(), value).outcome

    def click(self, user: str, item: str, offset: int | None = None) -> list[dict[str, Any]]:
        """One click through the pipeline; the messages it sent, decoded, with their topic.
        The offset sets event id and time: equal offsets, equal events in two harnesses."""
        offset = next(_offsets) if offset is None else offset
        message = {"event_id": f"e{offset}", "user_id": user, "item_id": item, "ts": T0 + offset}
        record = Record("clicks", 0, offset, user.encode(), orjson.dumps(message))
        start = len(self.sent)
        asyncio.run(self.pipeline.handle_user_batch([record]))
        return [{"_topic": t, **orjson.loads(v)} for t, _, v in self.sent[start:] if v is not None]

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def lists(messages: list[dict[str, Any]], topic: str = "recommendations") -> list[dict[str, Any]]:
    return [m for m in messages if m["_topic"] == topic]


def test_a_pushed_body_is_live_from_the_next_batch_with_its_label() -> None:
    h = Harness()
    before = lists(h.click("u1", "i1"))[0]
    assert before["profile"] == "default@1" and before["variant"] == "A"
    assert h.push({"name": "default", "version": 2, "weights": {"popularity": 50.0}}) == "activated"
    after = lists(h.click("u1", "i2"))[0]
    assert after["profile"] == "default@2"
    assert h.value("recstream_ranking_profile_updates_total", outcome="activated") == 1
    assert h.value("recstream_ranking_variant_share", profile="default@2", variant="A") == 1.0
    assert h.value("recstream_ranking_variant_share", profile="default@1", variant="A") == 0.0


def test_an_invalid_body_is_rejected_and_the_live_one_stays() -> None:
    h = Harness()
    assert h.push({"name": "default", "version": 5, "weights": {"relation": "x"}}) == "rejected"
    assert h.runtime.apply(b"default", b"{broken").outcome == "rejected"
    assert lists(h.click("u1", "i1"))[0]["profile"] == "default@1"
    assert h.value("recstream_ranking_profile_updates_total", outcome="rejected") == 2


def test_variants_label_each_list_with_the_users_variant() -> None:
    h = Harness()
    variants = [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "size": 3}]
    h.push({"name": "default", "version": 2, "variants": variants})
    seen = {}
    for i in range(40):
        message = lists(h.click(f"user-{i}", "i1"))[0]
        seen[message["variant"]] = message
        assert len(message["items"]) == (3 if message["variant"] == "B" else 20)
    assert set(seen) == {"A", "B"}
    assert {tuple(x) for x in h.runtime.info()} == {("default@2", "A"), ("default@2", "B")}


def ids(message: dict[str, Any], k: int = 10) -> list[str]:
    return [x["item_id"] for x in message["items"][:k]]


def test_a_shadow_is_scored_and_compared_without_changing_what_users_get() -> None:
    plain, shadowed = Harness(), Harness()
    shadow = {"name": "cand", "version": 1, "shadow": True, "size": 5, "weights": {"relation": 0}}
    assert shadowed.push(shadow, key="cand") == "shadowed"
    assert not lists(plain.click("u1", "i4", 1), "recommendations-shadow")
    first = shadowed.click("u1", "i4", 1)
    live, alt = lists(first)[0], lists(first, "recommendations-shadow")[0]
    assert alt["profile"] == "cand@1" and alt["trigger"] == live["trigger"]
    assert alt["state_version"] == live["state_version"]
    assert ids(alt) != ids(live)  # the shadow ranks differently, so the next check can fail
    second = shadowed.click("u1", "i5", 2)
    # what the user gets is what the live profile ranks, with a shadow or without
    assert lists(plain.click("u1", "i5", 2))[0]["items"] == lists(second)[0]["items"]
    labels = {"active": "default@1", "shadow": "cand@1", "feed": "for_you"}
    assert shadowed.value("recstream_shadow_lists_total", **labels) == 2
    assert shadowed.value("recstream_shadow_overlap_at_10_count", **labels) == 2
    assert 0.0 <= shadowed.value("recstream_shadow_overlap_at_10_sum", **labels) <= 2.0
    # the second click followed one live and one shadow list: one opportunity, hits per list
    pair = {"active": "default@1", "shadow": "cand@1"}
    assert shadowed.value("recstream_shadow_next_events_total", **pair) == 1
    for ranking, shown in (("active", live), ("shadow", alt)):
        hits = shadowed.value("recstream_shadow_next_event_hits_total", **pair, ranking=ranking)
        assert hits == float("i5" in ids(shown))


def test_a_retracted_shadow_stops_being_scored() -> None:
    h = Harness()
    h.push({"name": "cand", "version": 1, "shadow": True}, key="cand")
    assert lists(h.click("u1", "i1"), "recommendations-shadow")
    assert h.push(None, key="cand") == "retracted"
    assert not lists(h.click("u1", "i2"), "recommendations-shadow")


def test_next_interaction_hit_is_counted_against_the_list_shown() -> None:
    h = Harness()
    shown = lists(h.click("u1", "i1"))[0]
    top = ids(shown)[0]
    again = lists(h.click("u1", top))[0]  # the top item of the list it was shown: a hit
    labels = {"profile": "default@1", "variant": "A"}
    assert h.value("recstream_variant_next_events_total", **labels) == 1
    assert h.value("recstream_variant_next_event_hits_total", **labels) == 1
    miss = next(f"i{i}" for i in range(30) if f"i{i}" not in ids(again))
    h.click("u1", miss)
    assert h.value("recstream_variant_next_events_total", **labels) == 2
    assert h.value("recstream_variant_next_event_hits_total", **labels) == 1


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"default", b"{oops", "malformed_json"),
        (b"default", b'{"name": "default"}', "schema_violation"),
        (b"other", b'{"name": "default", "version": 2}', "key_mismatch"),
        (b"default", b'{"name": "default", "version": 2, "query_items": "x"}', "invalid_profile"),
    ],
)
def test_group_consumer_dead_letters_invalid_records_once(
    key: bytes, value: bytes, reason: str
) -> None:
    assert check(key, value) is not None and check(key, value)[0] == reason  # type: ignore[index]
    h = Harness()
    good = Record("ranking-profiles", 0, 1, b"default", b'{"name": "default", "version": 2}')
    bad = Record("ranking-profiles", 0, 2, key, value)
    tomb = Record("ranking-profiles", 0, 3, b"cand", None)
    asyncio.run(profile_batch_handler(h.pipeline)([good, bad, tomb]))
    letters = [orjson.loads(v) for t, _, v in h.sent if t == "dead-letters" and v]
    assert [(d["offset"], d["reason"]) for d in letters] == [(2, reason)]
    topic = {"topic": "ranking-profiles"}
    consumed = h.value("recstream_events_consumed_total", **topic)
    processed = h.value("recstream_events_processed_total", **topic)
    dead = h.value("recstream_dead_letters_total", **topic, reason=reason)
    assert (consumed, processed, dead) == (3, 2, 1)


def test_a_push_arriving_while_a_batch_is_in_flight_applies_from_the_next_batch() -> None:
    """The follower runs at the pipeline's awaits (here: the first send of a batch's outputs);
    the batch was ranked before, entirely with the old profile, and nothing is lost."""
    h = Harness()
    original = h.send

    async def send_and_push(
        topic: str, key: bytes, value: bytes | None, partition: int | None
    ) -> asyncio.Future[Any]:
        if h.runtime.registry.live.label == "default@1":
            h.push({"name": "default", "version": 2, "size": 4})
        return await original(topic, key, value, partition)

    h.pipeline.send = send_and_push
    records = [
        Record("clicks", 0, n, f"u{n}".encode(), orjson.dumps(
            {"event_id": f"b{n}", "user_id": f"u{n}", "item_id": f"i{n}", "ts": T0 + n}
        ))
        for n in range(3)
    ]  # fmt: skip
    asyncio.run(h.pipeline.handle_user_batch(records))
    batch = [orjson.loads(v) for t, _, v in h.sent if t == "recommendations" and v]
    assert [m["profile"] for m in batch] == ["default@1"] * 3
    assert {m["user_id"] for m in batch} == {"u0", "u1", "u2"}
    after = lists(h.click("u0", "i5"))[0]
    assert after["profile"] == "default@2" and len(after["items"]) == 4
