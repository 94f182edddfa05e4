"""`catalog` and `stock` in a consumer group of their own, read by a bare aiokafka consumer.

Every worker's replica applies every item record (see ``replica``); this group exists only so
that each record is validated, counted and, if malformed, dead-lettered exactly once across
the workers. It used to be a Faust agent: ~230 µs of Faust machinery per record, on the loop
the user agent ranks on, so a bulk catalog import of 23k products held users' lists ~5 s for
bookkeeping alone. A bare consumer does the same in a fraction (DESIGN.md: a bare aiokafka
consumer reads ~50x more records a second than a no-op Faust agent).

Offsets are committed after the handler has delivered the batch's dead letters, so a crash
re-delivers it (at least once, like every input here). A handler that raises is fatal: the
worker exits and its supervisor restarts it (see ``stream.app.die``), never a silent skip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from stream.adapters.consumer_task import ConsumerTask
from stream.plan import Record
from stream.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Record]], Awaitable[None]]


def group_id(settings: Settings) -> str:
    """The item group's id: the Faust app's id with an ``-items`` suffix (own offsets)."""
    return f"{settings.topic_prefix}{settings.app_id}-items"


def group_kwargs(settings: Settings, flavour: str) -> dict[str, Any]:
    """Timeouts: the bundled broker holds a JoinGroup for the whole rebalance timeout (DESIGN.md
    "Known limits"), so keep it short there, as the Faust group does; Kafka's defaults else."""
    if flavour != "tansu":
        return {}
    return {
        "rebalance_timeout_ms": int(settings.rebalance_timeout_s * 1000),
        "session_timeout_ms": int(max(10.0, settings.rebalance_timeout_s) * 1000),
        "heartbeat_interval_ms": 1000,
    }


class _Forget(ConsumerRebalanceListener):
    """Revoked partitions leave the lag's committed offsets: their next owner moves them on."""

    def __init__(self, committed: dict[TopicPartition, int]) -> None:
        self.committed = committed

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self.committed.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class ItemGroup(ConsumerTask):
    """Consumes ``topics`` (logical names) in the group ``group_id(settings)``; hands each
    fetched batch, as ``Record``s, to ``handle``, then commits it."""

    lag_label = "group"

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        handle: Handler,
        batch_max: int,
        flavour: str = "kafka",
    ) -> None:
        self.settings = settings
        self.handle = handle
        #: validation and accounting only (the replica applies item records): no user waits
        self.wait_ms = settings.follower_fetch_max_wait_ms
        self.batch_max = batch_max
        self.flavour = flavour
        self._logical = {settings.topic(t): t for t in topics}
        self._committed: dict[TopicPartition, int] = {}
        self.batches = 0

    async def start(self) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=group_id(s),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.wait_ms,
            **group_kwargs(s, self.flavour),
            **s.kafka_security.aiokafka_kwargs(),
        )
        await consumer.start()
        consumer.subscribe(list(self._logical), listener=_Forget(self._committed))
        self.consumer = consumer
        self._task = asyncio.create_task(self._run(), name="item-group")

    async def _run(self) -> None:
        assert self.consumer is not None
        wait_ms = self.wait_ms
        while True:
            fetched = await self.consumer.getmany(timeout_ms=wait_ms, max_records=self.batch_max)
            if fetched:
                await self._one_batch(fetched)

    async def _one_batch(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        records = [
            Record(self._logical[tp.topic], tp.partition, r.offset, r.key, r.value, r.timestamp)
            for tp, batch in fetched.items()
            for r in batch
        ]
        await self.handle(records)
        offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
        try:
            assert self.consumer is not None
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # partitions moved while the batch was handled: their next owner re-reads it (a
            # dead letter may be written twice; at least once, as everywhere here)
            log.info("item group: batch handled, commit refused by a rebalance (%s)", exc)
            return
        except KafkaError:
            log.warning("item group: commit failed; the batch will be re-read", exc_info=True)
            return
        self._committed.update(offsets)
        self.batches += 1

    async def done_upto(self, tp: TopicPartition) -> int:
        """What this worker committed on ``tp`` (its fetch position until its first commit)."""
        done = self._committed.get(tp)
        return done if done is not None else await super().done_upto(tp)
