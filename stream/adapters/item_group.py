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
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from stream.adapters.group_task import GroupTask, group_consumer
from stream.plan import Record
from stream.settings import Settings

Handler = Callable[[Sequence[Record]], Awaitable[None]]


def group_id(settings: Settings) -> str:
    """The item group's id: the Faust app's id with an ``-items`` suffix (own offsets)."""
    return f"{settings.topic_prefix}{settings.app_id}-items"


class _Forget(ConsumerRebalanceListener):
    """Revoked partitions leave the lag's committed offsets: their next owner moves them on."""

    def __init__(self, group: GroupTask) -> None:
        self.group = group

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.group.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class ItemGroup(GroupTask):
    """Consumes ``topics`` (logical names) in the group ``group_id(settings)``; hands each
    fetched batch, as ``Record``s, to ``handle``, then commits it."""

    lag_label = "group"
    name = "item group"

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        handle: Handler,
        batch_max: int,
        flavour: str = "kafka",
    ) -> None:
        super().__init__()
        self.settings = settings
        self.handle = handle
        #: validation and accounting only (the replica applies item records): no user waits
        self.wait_ms = settings.follower_fetch_max_wait_ms
        self.batch_max = batch_max
        self.flavour = flavour
        self._logical = {settings.topic(t): t for t in topics}
        self.batches = 0

    async def start(self) -> None:
        s = self.settings
        consumer = group_consumer(s, group_id(s), self.flavour, self.wait_ms)
        await consumer.start()
        consumer.subscribe(list(self._logical), listener=_Forget(self))
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
        # partitions that moved while the batch was handled refuse the commit: their next owner
        # re-reads it (a dead letter may be written twice; at least once, as everywhere here)
        if await self.commit(offsets):
            self.batches += 1
