"""A bare aiokafka consumer driven by one background task: what the follower (replicas) and the
item group share. Stopping never raises the task's own failure (``failed`` reports it; the
worker's watchdog turns it into an exit), so a supervisor's stop always completes."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, TopicPartition


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """``consumer.stop()``, without the CancelledError aiokafka can leak from it.

    Stopping a consumer shortly after its start, its group coordinator cancels its own
    ``_reset_committed_routine`` task and awaits it, and that task's CancelledError came out of
    ``stop()``: raised from a worker's start-up (the learned snapshot's check), it made mode
    stop the worker quietly with exit code 0 (a restart test failed ~1 run in 8). The error is
    re-raised only when the task calling this is itself being cancelled."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


class ConsumerTask:
    """Holds ``consumer`` and the task reading it; subclasses start both."""

    consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None
    #: the ``consumer`` label of ``recstream_consumer_lag_messages``
    lag_label = "replica"

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.consumer is not None:
            await stop_consumer(self.consumer)
            self.consumer = None

    @property
    def failed(self) -> BaseException | None:
        """The exception that ended the task, if any (the worker must then crash)."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            return self._task.exception()
        return None

    async def done_upto(self, tp: TopicPartition) -> int:
        """The offset below which ``tp`` counts as done: the fetch position by default."""
        assert self.consumer is not None
        return int(await self.consumer.position(tp))

    async def lag(self) -> dict[tuple[str, str, int], int]:
        """Messages behind the high-water mark per assigned partition. The high-water mark
        comes from fetch responses, which are right on the bundled broker too."""
        consumer = self.consumer
        if consumer is None:
            return {}
        out: dict[tuple[str, str, int], int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                done = await self.done_upto(tp)
                out[(self.lag_label, tp.topic, tp.partition)] = max(0, high - done)
        return out
