"""Per-worker replica of `catalog`, `stock` and `learned`: every partition, from the beginning.

Faust's GlobalTable does not replicate across workers (faust-streaming #283, seen here too), so
each worker runs its own consumer with no group, assigned every partition, and folds the
messages into its local read models: the numpy catalog, and (from `learned`) popularity and item
relations, so what any worker learned survives restarts and is the same on every worker.
Validation and dead-lettering of `catalog` and `stock` is done once, by the group-consumed
agents; the replica silently skips what they reject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.adapters.validation import SchemaError, Validators
from stream.domain.catalog import Catalog, StockChange
from stream.domain.learning import Learner, Observation
from stream.settings import Settings

log = logging.getLogger(__name__)

OnStockChange = Callable[[StockChange, dict[str, Any]], Awaitable[None]]


class CatalogReplica:
    """Follows `catalog` + `stock` into a Catalog; knows when it has caught up."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        validators: Validators,
        on_stock_change: OnStockChange | None = None,
        learner: Learner | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.validators = validators
        self.on_stock_change = on_stock_change
        self.learner = learner
        self.pending_stock: dict[str, dict[str, Any]] = {}  # stock seen before its catalog entry
        self.applied = 0
        self.skipped = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_empty_round_start = -1.0
        self._topics = {settings.topic("catalog"): "catalog", settings.topic("stock"): "stock"}
        if learner is not None:
            self._topics[settings.topic("learned")] = "learned"

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.settings.kafka_security.aiokafka_kwargs(),
        )
        await consumer.start()
        partitions: list[TopicPartition] = []
        for topic in self._topics:
            ids = consumer.partitions_for_topic(topic)
            if not ids:
                await consumer._client.force_metadata_update()  # no public API
                ids = consumer.partitions_for_topic(topic) or set()
            if not ids:
                await consumer.stop()
                raise RuntimeError(f"topic {topic} does not exist; create topics first")
            partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="catalog-replica")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def failed(self) -> BaseException | None:
        """The exception that killed the follower, if any (the worker must then crash)."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            return self._task.exception()
        return None

    async def _run(self) -> None:
        assert self._consumer is not None
        loop = asyncio.get_running_loop()
        wait_ms = self.settings.fetch_max_wait_ms
        while True:
            started = loop.time()
            batches = await self._consumer.getmany(timeout_ms=wait_ms, max_records=5000)
            if not batches:
                self._last_empty_round_start = started
                continue
            for tp, records in batches.items():
                kind = self._topics[tp.topic]
                for record in records:
                    await self._apply(kind, record.value)

    async def _apply(self, kind: str, raw: bytes | None) -> None:
        if kind == "learned":
            self._learn(raw)
            return
        try:
            message = orjson.loads(raw or b"")
            self.validators.validate(kind, message)
        except (orjson.JSONDecodeError, SchemaError):
            self.skipped += 1  # dead-lettered by the group-consumed agent for this topic
            return
        self.applied += 1
        if kind == "catalog":
            self.catalog.upsert(message)
            pending = self.pending_stock.pop(str(message["item_id"]), None)
            if pending is not None:
                await self._stock(pending)
        else:
            await self._stock(message)

    def _learn(self, raw: bytes | None) -> None:
        assert self.learner is not None
        try:
            obs = Observation.from_bytes(raw or b"")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            self.skipped += 1  # only workers write this topic; never let one record stop us
            log.debug("skipped a malformed observation on learned")
            return
        self.applied += 1
        self.learner.remote(obs)

    async def _stock(self, message: dict[str, Any]) -> None:
        item_id = str(message["item_id"])
        change = self.catalog.set_stock(item_id, int(message["available"]))
        if change is None:
            self.pending_stock[item_id] = message
            return
        if (change.went_out or change.came_back) and self.on_stock_change is not None:
            await self.on_stock_change(change, message)

    async def lag(self) -> dict[tuple[str, str, int], int]:
        """Messages behind the high-water mark per partition (for metrics). The high-water mark
        comes from fetch responses, which are right on the bundled broker too."""
        consumer = self._consumer
        if consumer is None:
            return {}
        out: dict[tuple[str, str, int], int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                position = await consumer.position(tp)
                out[("replica", tp.topic, tp.partition)] = max(0, high - position)
        return out

    async def caught_up(self, timeout: float = 5.0) -> bool:
        """True once a fetch round that began after this call found nothing new.

        Uses empty fetches rather than end offsets because the bundled broker reports wrong
        end offsets for multi-record batches; correct on Apache Kafka as well.
        """
        loop = asyncio.get_running_loop()
        # an in-flight fetch may predate the call: require a round started one wait later
        asked = loop.time() + self.settings.fetch_max_wait_ms / 1000.0
        deadline = loop.time() + timeout
        while self._last_empty_round_start < asked:
            if self.failed is not None:
                raise RuntimeError("catalog replica died") from self.failed
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True
