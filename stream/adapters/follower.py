"""Follow topics from the beginning, on every partition, with no consumer group, forever.

What each worker needs for its replicated read models (catalog, stock, learned). It knows when
it has caught up without trusting ListOffsets (wrong on the bundled broker): a fetch round that
began after the question found nothing new, with every partition at the high-water mark that
fetch responses report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from stream.adapters.consumer_task import ConsumerTask, stop_consumer
from stream.settings import Settings

#: the longest a follower applies records before it lets other tasks of the loop run
YIELD_EVERY_S = 0.005

Apply = Callable[[str, ConsumerRecord[bytes, bytes]], Awaitable[None]]


def standalone_consumer(
    settings: Settings, fetch_bytes: int = 4 * 1024 * 1024, wait_ms: int | None = None
) -> AIOKafkaConsumer:
    """A consumer outside any group, reading from the earliest offset, committing nothing: what
    every reader of whole topics here uses (replicas, state recovery, tools). ``wait_ms``: its
    fetch wait (default ``settings.fetch_max_wait_ms``)."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms if wait_ms is None else wait_ms,
        max_partition_fetch_bytes=fetch_bytes,
        **settings.kafka_security.aiokafka_kwargs(),
    )


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The partitions of ``topic`` (empty: no such topic), asking the broker again once when
    the consumer's metadata does not know it yet (a topic created since the client started)."""
    ids = consumer.partitions_for_topic(topic)
    if not ids:
        await consumer.client.force_metadata_update()
        ids = consumer.partitions_for_topic(topic)
    return set(ids or ())


class Follower(ConsumerTask):
    """One consumer over ``topics`` (full names); ``apply(topic, record)`` for every record."""

    def __init__(
        self,
        settings: Settings,
        topics: list[str],
        apply: Apply,
        name: str,
        wait_ms: int | None = None,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.apply = apply
        self.name = name
        #: the fetch wait: ``settings.follower_fetch_max_wait_ms`` unless given (the catalog
        #: and stock replica is given the user path's, as a stock-out changes lists)
        self.wait_ms = settings.follower_fetch_max_wait_ms if wait_ms is None else wait_ms
        self._last_empty_round_start = -1.0

    async def start(self, positions: dict[int, int] | None = None) -> None:
        """Assign every partition; read from ``positions`` (partition → next offset, single
        topic: a restored snapshot's) where given, else from the beginning."""
        positions = positions or {}
        consumer = standalone_consumer(self.settings, wait_ms=self.wait_ms)
        await consumer.start()
        partitions: list[TopicPartition] = []
        try:
            for topic in self.topics:
                ids = await topic_partitions(consumer, topic)
                if not ids:
                    raise RuntimeError(f"topic {topic} does not exist; create topics first")
                partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        except BaseException:
            await stop_consumer(consumer)
            raise
        consumer.assign(partitions)
        resumed = [tp for tp in partitions if positions.get(tp.partition, 0) > 0]
        for tp in resumed:
            consumer.seek(tp, positions[tp.partition])
        fresh = [tp for tp in partitions if tp not in resumed]
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        self.consumer = consumer
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        assert self.consumer is not None
        loop = asyncio.get_running_loop()
        wait_ms = self.wait_ms
        while True:
            started = loop.time()
            batches = await self.consumer.getmany(timeout_ms=wait_ms, max_records=5000)
            if not batches:
                # an empty round may only mean the next fetch is slow (a loaded machine): it
                # counts only with every partition at its high-water mark
                if await self._at_end():
                    self._last_empty_round_start = started
                continue
            budget_end = loop.time() + YIELD_EVERY_S
            for tp, records in batches.items():
                for record in records:
                    await self.apply(tp.topic, record)
                    if loop.time() >= budget_end:
                        # a fetch holds up to 5,000 records (~0.5 s of catalog upserts): let
                        # the user agent's batches run between slices instead of after all
                        await asyncio.sleep(0)
                        budget_end = loop.time() + YIELD_EVERY_S

    async def _at_end(self) -> bool:
        assert self.consumer is not None
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None or await self.consumer.position(tp) < highwater:
                return False
        return True

    async def caught_up(self, timeout: float = 5.0) -> bool:
        """True once a fetch round that began after this call found nothing new."""
        loop = asyncio.get_running_loop()
        # an in-flight fetch may predate the call: require a round started one wait later
        asked = loop.time() + self.wait_ms / 1000.0
        deadline = loop.time() + timeout
        while self._last_empty_round_start < asked:
            if self.failed is not None:
                raise RuntimeError(f"{self.name} died") from self.failed
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True
