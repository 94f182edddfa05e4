"""Pipeline with batches in flight: the next batch folds into the state still being delivered,
the store is written only after delivery, in batch order, and a replay stays a replay."""

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
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.pipeline import Pipeline
from stream.plan import Record

T0 = 1_700_000_000_000


class HeldBroker:
    """A send whose deliveries the test releases (all at once, per call of ``deliver``)."""

    def __init__(self) -> None:
        self.held: list[asyncio.Future[Any]] = []
        self.sent: list[str] = []

    async def send(self, topic: str, key: bytes, value: bytes | None, p: int | None) -> Any:
        self.sent.append(topic)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.held.append(fut)
        return fut

    def deliver(self) -> None:
        for fut in self.held:
            if not fut.done():
                fut.set_result(None)


def make_pipeline(store: MemoryStore, broker: HeldBroker, inflight: int) -> Pipeline:
    catalog = Catalog()
    for i in range(10):
        catalog.upsert({"item_id": f"i{i}", "title": f"Item {i}"})

    async def caught_up() -> bool:
        return True

    pipeline = Pipeline(
        Engine(catalog=catalog, ranking=RankingProfile()),
        Decoder(get_validators(), 64 * 1024),
        store,
        broker.send,
        None,
        Metrics(),
        caught_up,
        inflight=inflight,
    )
    pipeline.ready.set()
    return pipeline


def click(offset: int, item: str, user: str = "u1") -> Record:
    body = {"event_id": f"c{offset}", "user_id": user, "item_id": item, "ts": T0 + offset}
    return Record("clicks", 0, offset, user.encode(), orjson.dumps(body))


def viewed(raw: bytes | None) -> list[str]:
    assert raw is not None
    return sorted(q[0] for q in UserProfile.from_bytes(raw).queries)


def test_the_next_batch_folds_into_the_state_still_being_delivered() -> None:
    async def scenario() -> tuple[bytes | None, bool, list[str]]:
        store, broker = MemoryStore(), HeldBroker()
        pipeline = make_pipeline(store, broker, inflight=4)
        first = await pipeline.dispatch_user_batch([click(1, "i1")])
        second = await pipeline.dispatch_user_batch([click(2, "i2")])
        before_delivery = store.get("u1", partition=0)
        broker.deliver()
        await asyncio.gather(first, second)
        return before_delivery, pipeline.inflight.read("u1")[0], viewed(store.get("u1", 0))

    before_delivery, still_pending, after = asyncio.run(scenario())
    assert before_delivery is None  # nothing is written before its outputs were delivered
    assert not still_pending
    assert after == ["i1", "i2"]  # the second batch saw the first one's state


def test_in_flight_and_one_at_a_time_end_in_the_same_state_and_outputs() -> None:
    batches = [[click(1, "i1"), click(2, "i3")], [click(3, "i2", "u2")], [click(4, "i4")]]

    async def run(inflight: int) -> tuple[dict[str, list[str]], list[str]]:
        store, broker = MemoryStore(), HeldBroker()
        pipeline = make_pipeline(store, broker, inflight)
        tasks = []
        for batch in batches:
            if inflight == 1:  # the old order: each batch delivered before the next
                task = await pipeline.dispatch_user_batch(batch)
                broker.deliver()
                await task
            else:
                tasks.append(await pipeline.dispatch_user_batch(batch))
        broker.deliver()
        await asyncio.gather(*tasks)
        return {u: viewed(store.get(u, 0)) for u in ("u1", "u2")}, broker.sent

    assert asyncio.run(run(4)) == asyncio.run(run(1))


def test_a_replay_is_still_skipped_while_its_first_application_is_in_flight() -> None:
    batches = [[click(1, "i1")], [click(1, "i1"), click(2, "i2")]]  # click 1 re-delivered

    async def run(inflight: int, deliver_each: bool) -> bytes | None:
        store, broker = MemoryStore(), HeldBroker()
        pipeline = make_pipeline(store, broker, inflight)
        tasks = []
        for batch in batches:
            tasks.append(await pipeline.dispatch_user_batch(batch))
            if deliver_each:
                broker.deliver()
                await tasks[-1]
        broker.deliver()
        await asyncio.gather(*tasks)
        return store.get("u1", 0)

    in_flight = asyncio.run(run(4, deliver_each=False))
    one_by_one = asyncio.run(run(1, deliver_each=True))
    assert in_flight is not None and in_flight == one_by_one
    # and the replay changed nothing: the same as the click applied once
    assert UserProfile.from_bytes(in_flight).events == 2
