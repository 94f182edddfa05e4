"""A forget is applied once: re-delivered after a crash, it must not erase what came after it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from stream.adapters.codec import Decoder
from stream.adapters.metrics import Metrics
from stream.adapters.state_store import MemoryStore
from stream.adapters.validation import get_validators
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.erasure import Erasures
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.pipeline import Pipeline
from stream.plan import Record

T0 = 1_700_000_000_000


class Worker:
    """A pipeline on an in-memory store; the store survives a "crash" (a new Pipeline)."""

    def __init__(self) -> None:
        catalog = Catalog()
        for i in range(10):
            catalog.upsert({"item_id": f"i{i}", "title": f"Item {i}"})
        self.engine = Engine(catalog=catalog, ranking=RankingProfile())
        self.store = MemoryStore()
        self.sent: list[tuple[str, bytes | None]] = []
        self.restart()

    def restart(self) -> None:
        self.pipeline = Pipeline(
            self.engine,
            Decoder(get_validators(), 64 * 1024),
            self.store,
            self.send,
            None,
            Metrics(),
            self.caught_up,
        )
        self.pipeline.ready.set()

    async def send(self, topic: str, key: bytes, value: bytes | None, p: int | None) -> Any:
        self.sent.append((topic, value))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def caught_up(self) -> bool:
        return True

    def batch(self, *records: Record) -> None:
        asyncio.run(self.pipeline.handle_user_batch(list(records)))

    def profile(self, user: str = "u1") -> UserProfile | None:
        raw = self.store.get(user, partition=0)
        return None if raw is None else UserProfile.from_bytes(raw)


def click(offset: int, item: str, user: str = "u1") -> Record:
    body = {"event_id": f"c{offset}", "user_id": user, "item_id": item, "ts": T0 + offset}
    return Record("clicks", 0, offset, user.encode(), orjson.dumps(body))


def forget(offset: int, user: str = "u1") -> Record:
    body = {"event_id": f"f{offset}", "user_id": user, "ts": T0 + offset}
    return Record("forget", 0, offset, user.encode(), orjson.dumps(body))


def viewed(profile: UserProfile | None) -> set[str]:
    assert profile is not None
    return {q[0] for q in profile.queries}


def test_a_forget_erases_the_profile_and_events_after_it_start_a_new_one() -> None:
    w = Worker()
    w.batch(click(1, "i1"), click(2, "i2"))
    w.batch(click(3, "i3"), forget(7), click(4, "i4"))
    assert viewed(w.profile()) == {"i4"}
    assert ("recommendations", None) in w.sent  # the tombstone


def test_a_redelivered_forget_does_not_erase_events_applied_after_it_in_the_same_batch() -> None:
    w = Worker()
    w.batch(click(1, "i1"), forget(7), click(2, "i2"))
    w.restart()  # crash before the offsets were committed: the whole batch comes again
    w.batch(click(1, "i1"), forget(7), click(2, "i2"))
    assert viewed(w.profile()) == {"i2"}


def test_a_redelivered_forget_does_not_erase_events_applied_in_a_later_batch() -> None:
    w = Worker()
    w.batch(click(1, "i1"))
    w.batch(forget(7))
    assert w.profile() is None  # nothing of the erased user is stored, not even an offset
    w.batch(click(2, "i2"))
    w.restart()
    w.batch(click(2, "i2"))  # a replay: skipped
    w.batch(forget(7))  # re-delivered after the click: already applied, wipes nothing
    assert viewed(w.profile()) == {"i2"}
    w.batch(forget(8))  # a new request erases again
    assert w.profile() is None


def test_erasures_split_hand_cases() -> None:
    def ev(topic: str, offset: int) -> UserEvent:
        return UserEvent(
            event_id=f"{topic}{offset}",
            user_id="u",
            topic=topic,
            ts=T0 + offset,
            item_ids=("i1",) if topic != "forget" else (),
            source=(topic, 0, offset),
        )

    e = Erasures(remember=1)
    a, f, b = ev("clicks", 1), ev("forget", 5), ev("clicks", 2)
    split = e.split(None, "u", [a, f, b])
    assert split.wipe and split.state is None and split.events == [b]
    fresh = e.fresh("u")
    assert fresh is not None and fresh.offsets == {"forget:0": 5}
    assert e.fresh("u") is None  # carried once
    again = e.split(fresh, "u", [a, f, b])
    assert not again.wipe and again.state is fresh and again.events == [b]
    e.split(None, "u", [f])
    e.split(None, "v", [ev("forget", 6)])  # bounded: u's marker is dropped
    assert e.fresh("u") is None and e.fresh("v") is not None
