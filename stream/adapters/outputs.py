"""Output topics (`recommendations`, `dead-letters`) on their own batching producer.

Faust's producer must send one record per batch on the bundled broker (changelog recovery
breaks otherwise), and each send then waits for the previous one's round trip. Outputs need no
such workaround, so they get an aiokafka producer that batches. At-least-once still holds: the
pipeline awaits every delivery of a batch before Faust acks that batch's input offsets.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from stream.settings import Settings

#: No linger: ``Pipeline.commit`` enqueues a whole batch's records without yielding to the event
#: loop and then awaits them, so the sender already finds the batch complete; a linger would only
#: delay every list (2 ms of the ~6 ms produce round trip measured on the bundled broker).
OUTPUT_LINGER_MS = 0
#: Room for a whole batch's records of one partition in one record batch (aiokafka's default is
#: 16 KB). A batch that fills up makes the next ``send`` to its partition wait until it is
#: delivered, so with 16 KB a batch of lists and profiles (1-2 KB each, ``learned`` groups up to
#: ~64 KB) went out as 4-5 produce requests one after another (~5 ms each on the bundled broker):
#: the pipeline's ``send`` stage took ~30 ms a batch at 600 events/s, and ~11 ms as one request.
#: 512 KB stays under Apache Kafka's default ``message.max.bytes`` (1 MB); builders grow as
#: records come, so nothing is allocated up front.
OUTPUT_MAX_BATCH_BYTES = 512 * 1024


class OutputProducer:
    def __init__(
        self,
        settings: Settings,
        linger_ms: int = OUTPUT_LINGER_MS,
        max_batch_bytes: int = OUTPUT_MAX_BATCH_BYTES,
    ) -> None:
        self.settings = settings
        self.linger_ms = linger_ms
        self.max_batch_bytes = max_batch_bytes
        self._producer: AIOKafkaProducer | None = None  # needs the worker's running loop
        self._topics: dict[str, str] = {}

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            linger_ms=self.linger_ms,
            max_batch_size=self.max_batch_bytes,
            acks="all",
            **self.settings.kafka_security.aiokafka_kwargs(),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(
        self, name: str, key: bytes, value: bytes | None, partition: int | None = None
    ) -> asyncio.Future[Any]:
        """Enqueue (``value`` None = tombstone); the future resolves once the broker has it."""
        if self._producer is None:
            raise RuntimeError("output producer used before start()")
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = self.settings.topic(name)
        return await self._producer.send(topic, value=value, key=key or None, partition=partition)

    async def broker_reachable(self, timeout: float = 2.0) -> bool:
        """One metadata round trip: is the cluster answering at all?"""
        if self._producer is None:
            return False
        try:
            return bool(await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout))
        except Exception:
            return False
