"""Small Kafka client helpers shared by the CLI, the demo and the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.adapters.consumer_task import stop_consumer
from stream.settings import ITEM_TOPICS, Settings


def message_key(topic: str, message: Mapping[str, Any]) -> bytes | None:
    """Partition key per DESIGN: user_id for user events, item_id for stock and catalog."""
    field = "item_id" if topic in ITEM_TOPICS else "user_id"
    value = message.get(field)
    return None if value is None else str(value).encode()


async def produce(
    settings: Settings,
    messages: Iterable[tuple[str, Any]],
    raw: bool = False,
    event_time: bool = False,
) -> int:
    """Send (logical topic, message) pairs and wait for all acks. ``raw`` sends bytes as given.

    ``event_time``: each record's timestamp is its message's ``ts`` instead of the send time,
    so two copies of the same events carry the same record times (a worker hands a fetch's
    records over in record-time order: ``stream.adapters.event_time``). Not for historical
    data on a broker with time retention: it would expire such records at once."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=2,
        **settings.kafka_security.aiokafka_kwargs(),
    )
    await producer.start()
    try:
        futures = []
        for topic, message in messages:
            if raw:
                key, value = message
            else:
                key, value = message_key(topic, message), orjson.dumps(message)
            stamp = int(message["ts"]) if event_time and not raw and "ts" in message else None
            futures.append(
                await producer.send(settings.topic(topic), value=value, key=key, timestamp_ms=stamp)
            )
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


def tombstone_message(key: bytes | None) -> dict[str, Any]:
    """How readers see a null-value record on `recommendations`: the user's list is gone."""
    user = (key or b"").decode("utf-8", errors="replace")
    return {
        "user_id": user,
        "tombstone": True,
        "feed": None,
        "items": [],
        "trigger": {"event_id": None, "topic": "forget", "ts": None},
        "state_version": None,
    }


class TopicReader:
    """Follows one topic from the beginning (all partitions, no group) for tests and tools."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = settings.topic(topic)
        self.messages: list[dict[str, Any]] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        from stream.adapters.follower import topic_partitions

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
            **self.settings.kafka_security.aiokafka_kwargs(),
        )
        await consumer.start()
        parts = await topic_partitions(consumer, self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    async def poll(self, timeout_ms: int = 50) -> list[dict[str, Any]]:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        new = []
        for records in batches.values():
            for record in records:
                if record.value is None:  # a tombstone: the user was forgotten
                    message = tombstone_message(record.key)
                else:
                    message = orjson.loads(record.value)
                message["_received_at"] = time.time()
                new.append(message)
        self.messages.extend(new)
        return new

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        """First message (already read or new) matching ``predicate``; TimeoutError otherwise."""
        for message in self.messages:
            if predicate(message):
                return message
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in await self.poll():
                if predicate(message):
                    return message
        raise TimeoutError(f"no matching message on {self.topic} within {timeout:.0f}s")


async def latest_recommendations(
    settings: Settings, user_id: str, feed: str = "for_you", timeout: float = 5.0
) -> dict[str, Any] | None:
    """Latest list for a user as read back from the `recommendations` topic."""
    latest = None
    async with TopicReader(settings, "recommendations") as reader:
        deadline = time.monotonic() + timeout
        idle = 0
        while time.monotonic() < deadline and idle < 3:
            new = await reader.poll(100)
            idle = 0 if new else idle + 1
            for message in new:
                if message["user_id"] != user_id:
                    continue
                if message.get("tombstone"):
                    latest = None  # forgotten: nothing to show until new events arrive
                elif message["feed"] == feed:
                    latest = message
    return latest


async def replay_to(
    settings: Settings, events: Iterable[dict[str, Any]], *, partial: bool = False, **kwargs: Any
) -> Any:
    """``stream.replay.replay`` against this deployment's broker, prefix and credentials.

    ``replay`` answers a Ctrl-C / SIGTERM that lands inside it with partial counts
    (``interrupted``) instead of raising. Only a caller that reports them (``partial=True``: the
    replay command, the loops that read lists beside a replay) wants that; for every other one
    (the bench's pre-fills) it is raised again here, so an interrupted run stops instead of
    going on with a partial catalog or backlog."""
    from stream.replay import replay

    stats = await replay(
        events,
        bootstrap=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        security_kwargs=settings.kafka_security.aiokafka_kwargs(),
        **kwargs,
    )
    if stats.interrupted and not partial:
        raise KeyboardInterrupt("replay interrupted")
    return stats


async def replay_dataset(
    settings: Settings,
    dataset: str,
    *,
    speed: float | None = None,
    rate: float | None = None,
    limit: int | None = None,
    max_users: int | None = None,
) -> Any:
    """Catalog first (so events reference known items), then events in time order."""
    import itertools

    from stream.datasets import load_subset
    from stream.worker import prepare

    await prepare(settings)
    data = load_subset(dataset, max_users)
    catalog = [{**m, "topic": "catalog"} for m in data.catalog]
    events: Iterable[dict[str, Any]] = data.events
    if limit is not None:
        events = itertools.islice(events, limit)
    published = await replay_to(settings, catalog, partial=True, total=len(catalog))
    if published.interrupted:  # Ctrl-C / SIGTERM while publishing the catalog: stop here
        return published
    return await replay_to(settings, events, partial=True, speed=speed, rate=rate)


async def read_latest(settings: Settings, topic: str, idle_rounds: int = 3) -> dict[str, Any]:
    """Latest value per key of a (logical) topic, read to its end: raw bytes, None = deleted.

    The end is found by empty fetches, not end offsets (the bundled broker reports wrong end
    offsets for multi-record batches)."""
    name = settings.topic(topic)
    from stream.adapters.follower import standalone_consumer, topic_partitions

    consumer = standalone_consumer(settings)
    await consumer.start()
    latest: dict[str, Any] = {}
    try:
        parts = await topic_partitions(consumer, name)
        if not parts:
            raise RuntimeError(f"topic {name} does not exist")
        tps = [TopicPartition(name, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        idle = 0
        while idle < idle_rounds:
            batches = await consumer.getmany(timeout_ms=100)
            idle = 0 if batches else idle + 1
            for records in batches.values():
                for record in records:
                    latest[(record.key or b"").decode("utf-8", errors="replace")] = record.value
    finally:
        await stop_consumer(consumer)
    return latest


async def dump_profiles(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every stored profile as written to the changelog (what recovery restores), by user."""
    from stream.adapters.changelog_store import changelog_name
    from stream.domain.profile import decode_stored

    raw = await read_latest(settings, changelog_name(settings))
    return {user: decode_stored(value) for user, value in raw.items() if value is not None}


async def forget_user(settings: Settings, user_id: str, reason: str = "") -> str:
    """Publish an erasure request on the `forget` control topic; returns its event id."""
    import uuid

    event_id = f"forget-{uuid.uuid4().hex[:12]}"
    message: dict[str, Any] = {
        "event_id": event_id,
        "user_id": user_id,
        "ts": int(time.time() * 1000),
    }
    if reason:
        message["reason"] = reason
    await produce(settings, [("forget", message)])
    return event_id
