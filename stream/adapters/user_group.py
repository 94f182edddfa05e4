"""The user and control topics read by a bare aiokafka consumer in a group of their own.

Why not a Faust agent: state already lives outside Faust (``changelog_store``), so all the
agent did was hand records over, one at a time, from Faust's consumer thread to the agent's
stream and back for acks: ~80-100 µs an event (the bench's no-op Faust agent drains ~10,000
events/s, a bare aiokafka consumer ~400,000), a fifth to a third of what a drained event
costs the whole worker. Here a fetch is taken whole (``getmany``), put in event time
(``event_time.in_event_time``, as Faust's scheduler did), cut into batches of ``batch_max``
and handed to the pipeline, on the event loop that ranks. ``RECSTREAM_USER_CONSUMER=faust``
keeps the agent.

* **Co-partitioning**: the range assignor gives every member the same partition numbers of
  every topic (all have ``settings.partitions``), so a user's events of every topic reach one
  worker, as Faust's assignor did.
* **At least once**: offsets are committed only for records whose batch the handler finished
  (its outputs and changelog records delivered), at most every ``COMMIT_INTERVAL_S``, before
  partitions are revoked, and at stop. A crash re-delivers the rest, which the profiles' input
  offsets turn into replays.
* **Rebalances**: a revocation waits for the batch in hand (Faust's ``stream_wait_empty``),
  commits it, and drops the rest of the fetch (the next owner, or this worker again, reads it
  from the committed offsets). A new assignment calls ``on_assigned`` (state recovery).
* **Moving from the Faust agent**: the group is new, so a partition it has committed nothing
  on starts where the Faust agent's group (the app id without the suffix) left it, read once
  at start, not from the topic's beginning (that would re-read the whole retention as
  replays). Every worker of a deployment must read the user topics the same way: two groups
  would both apply every event.
* A handler that raises is fatal (``stream.app._fatal``): the worker exits, never skips.
* **Refreshes wait their turn**: a fetch takes at most ``refresh_batch_max`` records of the
  `refresh` topic (the user topics' records are all taken). A stock-out or a restock of a
  popular item sends a refresh to every local user who held it (tens of thousands, each a
  ranking); taken whole, a fetch of them held every user event behind them for seconds. The
  rest stays in the consumer's buffer for the next fetches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from stream.adapters.consumer_task import stop_consumer
from stream.adapters.event_time import in_event_time
from stream.adapters.follower import topic_partitions
from stream.adapters.group_task import GroupTask, group_consumer
from stream.plan import Record
from stream.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Record]], Awaitable[None]]
OnAssigned = Callable[[set[int] | None], None]

#: every member gets the same partition numbers of every topic (they all have as many)
ASSIGNOR = RangePartitionAssignor
#: handled offsets are committed at most this often (Faust's ``broker_commit_interval``)
COMMIT_INTERVAL_S = 0.5
#: a stop waits at most this long for the batch in hand before cancelling it
STOP_WAIT_S = 10.0


def group_id(settings: Settings) -> str:
    """The user group's id: the Faust app's id with a ``-users`` suffix (its own offsets)."""
    return f"{settings.topic_prefix}{settings.app_id}-users"


def faust_group_id(settings: Settings) -> str:
    """The Faust agent's group, which read the user topics before this one."""
    return f"{settings.topic_prefix}{settings.app_id}"


async def faust_offsets(settings: Settings, topics: set[str]) -> dict[TopicPartition, int]:
    """The Faust group's committed offsets on ``topics`` (full names); empty if it has none or
    they cannot be read (then a partition new to this group is read from its start, and the
    profiles' input offsets skip what they already applied). Read by a consumer of that group
    that never joins it (the admin client's OffsetFetch is not understood by the bundled
    broker)."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=faust_group_id(settings),
        enable_auto_commit=False,
        **settings.kafka_security.aiokafka_kwargs(),
    )
    found: dict[TopicPartition, int] = {}
    try:
        await reader.start()
        for topic in sorted(topics):
            for partition in sorted(await topic_partitions(reader, topic)):
                tp = TopicPartition(topic, partition)
                offset = await reader.committed(tp)
                if offset is not None and offset >= 0:
                    found[tp] = offset
    except KafkaError:
        log.warning("user group: the Faust group's offsets could not be read", exc_info=True)
        return {}
    finally:
        await stop_consumer(reader)
    return found


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, group: UserGroup) -> None:
        self.group = group

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.group.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.group.assigned(set(assigned))


class UserGroup(GroupTask):
    """Consumes ``topics`` (logical names) in ``group_id(settings)``; hands batches of
    ``Record``s, in event time, to ``handle``; commits what it handled."""

    lag_label = "group"
    name = "user group"

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[str],
        handle: Handler,
        on_assigned: OnAssigned | None = None,
        flavour: str = "kafka",
    ) -> None:
        super().__init__()
        self.settings = settings
        self.handle = handle
        self.on_assigned = on_assigned
        self.flavour = flavour
        self.batch_max = max(1, settings.batch_max)
        self._logical = {settings.topic(t): t for t in topics}
        #: the `refresh` topic, when read and bounded (``_fetch``)
        self._refresh = settings.topic("refresh") if "refresh" in topics else None
        self.refresh_max = settings.refresh_batch_max
        self._backlog = 2 * self.batch_max if settings.backlog_by_partition else None
        self._busy = asyncio.Lock()  # held while a batch is handled
        self._handled: dict[TopicPartition, int] = {}  # next offset, not yet committed
        self._generation = 0  # bumped by every revocation: the fetch in hand is dropped
        self._last_commit = time.monotonic()
        #: where the Faust agent's group left each partition (read at start)
        self.seeds: dict[TopicPartition, int] = {}
        self.batches = 0

    async def start(self) -> None:
        s = self.settings
        consumer = group_consumer(
            s, group_id(s), self.flavour, s.fetch_max_wait_ms,
            partition_assignment_strategy=(ASSIGNOR,),
        )  # fmt: skip
        self.seeds = await faust_offsets(s, set(self._logical))
        await consumer.start()
        consumer.subscribe(list(self._logical), listener=_Rebalance(self))
        self.consumer = consumer
        self._task = asyncio.create_task(self._run(), name="user-group")

    async def stop(self, finish: bool = True) -> None:
        """Finish the batch in hand (at most ``STOP_WAIT_S``), commit what was handled, leave
        the group. ``finish`` False: do not wait (a batch taken before the engine was ready
        waits for it, and a stop during start-up must not)."""
        if finish and await self._hold(STOP_WAIT_S):
            try:
                self._generation += 1  # no further batch of the fetch in hand
                await self.commit_handled()
            finally:
                self._busy.release()
        await super().stop()  # (cancels the loop, then leaves the group)

    async def _hold(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._busy.acquire(), timeout)
        except TimeoutError:
            log.warning("user group: the batch in hand was still running after %.0f s", timeout)
            return False
        return True

    async def _run(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while True:
            fetched = await self._fetch(consumer)
            if fetched:
                await self._handle_fetch(fetched)
            if time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
                await self.commit_handled()

    async def _fetch(self, consumer: Any) -> dict[TopicPartition, list[Any]]:
        """The next fetch's records: every user topic's, and at most ``refresh_max`` of the
        `refresh` topic (module docstring). Refreshes are taken from what the consumer already
        holds; only when it holds none does the fetch wait, for the user topics' records."""
        wait = self.settings.fetch_max_wait_ms
        assigned = consumer.assignment()
        if self._refresh is None or self.refresh_max <= 0 or not assigned:
            return dict(await consumer.getmany(timeout_ms=wait))
        users = [tp for tp in assigned if tp.topic != self._refresh]
        refresh = [tp for tp in assigned if tp.topic == self._refresh]
        fetched: dict[TopicPartition, list[Any]] = {}
        if refresh:
            fetched.update(
                await consumer.getmany(*refresh, timeout_ms=0, max_records=self.refresh_max)
            )
        if users:  # (no wait while refreshes drain: the next fetch comes after their batch)
            fetched.update(await consumer.getmany(*users, timeout_ms=0 if fetched else wait))
        return fetched

    async def _handle_fetch(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        if self.settings.event_time_order:
            ordered = list(in_event_time(fetched, self._backlog))
        else:
            ordered = [(tp, r) for tp, batch in fetched.items() for r in batch]
        generation = self._generation
        for start in range(0, len(ordered), self.batch_max):
            async with self._busy:
                if self._generation != generation:
                    return  # partitions were revoked: the rest is read again from commits
                part = ordered[start : start + self.batch_max]
                await self.handle([self._record(tp, r) for tp, r in part])
                for tp, r in part:
                    self._handled[tp] = r.offset + 1
                self.batches += 1
            if time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
                await self.commit_handled()  # (a large fetch takes seconds: not only at its end)

    def _record(self, tp: TopicPartition, r: Any) -> Record:
        return Record(self._logical[tp.topic], tp.partition, r.offset, r.key, r.value, r.timestamp)

    async def commit_handled(self) -> None:
        """Commit the offsets handled since the last commit (``GroupTask.commit``)."""
        self._last_commit = time.monotonic()
        offsets, self._handled = self._handled, {}
        await self.commit(offsets)

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Before partitions move: the batch in hand finishes and is committed."""
        async with self._busy:
            self._generation += 1
            await self.commit_handled()
        self.forget(partitions)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """New partitions: seek those this group never committed on to the Faust group's
        offsets, then recover their state (``on_assigned``)."""
        consumer = self.consumer
        for tp in partitions:
            seed = self.seeds.get(tp)
            if seed is not None and consumer is not None and await consumer.committed(tp) is None:
                consumer.seek(tp, seed)
                log.info("user group: %s starts where the Faust agent left it, %d", tp, seed)
        if self.on_assigned is not None:
            self.on_assigned({tp.partition for tp in partitions})

    def partitions(self) -> set[int]:
        """The partition numbers this worker owns now (empty before the first assignment)."""
        consumer = self.consumer
        return {tp.partition for tp in consumer.assignment()} if consumer is not None else set()
