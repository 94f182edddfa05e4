"""Batches from a Faust stream whose size follows the backlog, with no fixed window at low load.

Why not ``Stream.take_events(max, within)``: it fills its buffer only while it waits, and that
wait always lasts ``within`` (unless the buffer fills first), starting after the previous batch
was handled. So every batch pays an idle window at low load (latency), and under load the
buffer stays closed while a batch is handled, so a batch can hold only what Faust hands over
inside one window (throughput). Measured on the bundled broker at 50 events/s (one worker,
`bench --quick` workload): fetched → handler start was p50 7 ms, most of it that window.

Here the stream is read all the time by the agent (``Stream.noack()``: acks are ours), into a
buffer of at most ``batch_max`` events, and a handler task takes the buffer once Faust has
handed over nothing new for ``gap_s`` (1 ms), or ``within_s`` after its first event, or when
it is full. At low load a batch is the event that just arrived, ~1 ms later; under backlog it
is what Faust holds, up to ``batch_max``: batches grow with the backlog. Handing a batch over
at once instead (``gap_s`` 0) was worse under load: the handler then preempted Faust's own
per-event delivery and batches stayed at 2-8 events (measured at 100 events/s on a starved
2-core machine: end-to-end p50 0.6-1.5 s at once vs 0.13-0.17 s with the gap and 0.24-0.38 s
with ``take_events``).

Under a backlog the gap alone kept batches small: the handler is CPU-bound, so Faust hands
events over only between batches, and a fetch round trip to the broker is a gap. Measured while
draining 4,000 bench events: batches of 25-150 events, 0.45-0.68 rankings per event, and the
worker's CPU per event followed the rankings. So when the consumer's fetches show records beyond
the last one handed over (``ConsumerLag``: high-water mark minus last offset, per partition) a
1 ms gap does not end a batch; it fills up to ``batch_max`` or ``backlog_within_s``, and more of
a user's session coalesces into one ranking (measured: 0.39-0.40 rankings per event at
``batch_max`` 256, 0.31-0.32 at 1,024). With no backlog nothing changes.

The default ``batch_max`` is 1,024 (it was 256). Measured on Dec 6, draining 20,000 bench events
with one worker, 256 against 1,024 in alternating pairs: 1,462 / 1,462 against 1,946 / 1,841
events/s with 2,000 users (lists 2,672 → 1,771, batches 79 → 21), and 1,365 / 1,383 against
1,773 / 1,725 with 20,000 users (lists 3,229 → 2,225). So it is not only sessions coalescing:
each batch has fixed costs (commit, sends, changelog, Qdrant flush), and fewer batches pay fewer
of them. ``bench --quick``, two pairs: 1,250 / 1,402 against 1,987 / 1,977 events/s (1.11× /
1.31× against 2.11× / 2.00× the naive agent). 512 and 2,048 were within the noise of 1,024
(two drains each, in turn with it; 2,048's batches were cut by ``backlog_within_s`` first).
The cost: a batch can hold the worker for ~0.5 s at this machine's rate, which a rebalance
waits for and which the first events of a full batch wait for, while they were queued anyway.

A backlog is at least ``backlog_min`` records (default ``BACKLOG_MIN``, 16), not any record
at all. Measured at 50 % load (``bench --quick``, 377 events/s): mean batch 43 events and p50
247 ms end to end, for a worker idle most of the time: each fetch brings the records of the
last fetch wait (~8 at 377/s with a 20 ms wait), "more than 0" was true whenever one was in
flight, and with one every 20 ms no ``within_s`` gap ever ended a batch, so batches filled
for up to ``backlog_within_s``. 16 is more than one fetch's worth at the rate one worker
sustains (~750/s × 20 ms = 15), so a steady load below capacity holds no batch back, while a
drain (hundreds to thousands held) or a worker falling behind (a CPU-starved worker's consumer
thread holds 15-60 records while events age by seconds) still fills batches. ``behind`` is
asked again at every step of a fill, so a batch waits only while the consumer holds that many.

At-least-once is unchanged: a batch's events are acked only after ``handler`` returned (all
its outputs delivered), in batch order; events still buffered when the worker stops are not
acked and are re-delivered after a restart or rebalance.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Handler = Callable[[Sequence[Any]], Awaitable[None]]

#: A batch is handled once Faust has handed over nothing new for this long (see ``_fill``).
BATCH_GAP_S = 0.001
#: Under a backlog a batch fills for at most this long (or to ``batch_max``).
BACKLOG_WITHIN_S = 0.25
#: A backlog is at least this many records fetched and not yet handed over (see above).
BACKLOG_MIN = 16


class ConsumerLag:
    """Records the consumer has fetched metadata for but not yet handed to this agent.

    ``highwater(tp)`` is the consumer's high-water mark of a partition as of its last fetch (None
    or an exception while unknown or unassigned: no backlog claimed). Only partitions this agent
    has seen an event of are counted, which is all a batch can grow from."""

    def __init__(self, highwater: Callable[[Any], int | None]) -> None:
        self.highwater = highwater
        self._last: dict[Any, int] = {}

    def saw(self, event: Any) -> None:
        message = event.message
        self._last[message.tp] = message.offset

    def __call__(self) -> int:
        behind = 0
        for tp, last in self._last.items():
            try:
                high = self.highwater(tp)
            except Exception:  # unassigned since (rebalance): nothing to wait for there
                continue
            if high is not None:
                behind += max(0, high - last - 1)
        return behind


class BatchFeeder:
    """One per agent: ``await feeder.run(stream)`` from the agent body."""

    def __init__(
        self,
        handler: Handler,
        batch_max: int,
        within_s: float = 0.0,
        gap_s: float = 0.0,
        lag: ConsumerLag | None = None,
        backlog_within_s: float = BACKLOG_WITHIN_S,
        backlog_min: int = BACKLOG_MIN,
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be >= 1")
        self.handler = handler
        self.batch_max = batch_max
        self.within_s = within_s
        self.gap_s = gap_s
        self.lag = lag
        self.backlog_within_s = max(within_s, backlog_within_s)
        self.backlog_min = max(1, backlog_min)
        self._buffer: list[Any] = []
        self._arrived = asyncio.Event()  # the buffer is not empty
        self._room = asyncio.Event()  # the buffer has room for one more event
        self._room.set()

    async def run(self, stream: Any) -> None:
        """Read ``stream`` until it ends or the agent is cancelled; the handler task goes
        with it. A handler exception propagates from here (the caller decides to die)."""
        manual = stream.noack()
        worker = asyncio.create_task(self._handle_forever(manual), name="batch-handler")
        try:
            async for event in manual.events():
                await self._put(event, worker)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if worker.done() and not worker.cancelled() and worker.exception() is not None:
            raise worker.exception()  # type: ignore[misc]

    async def _put(self, event: Any, worker: asyncio.Task[None]) -> None:
        self._buffer.append(event)
        if self.lag is not None:
            self.lag.saw(event)
        self._arrived.set()
        if len(self._buffer) >= self.batch_max:
            self._room.clear()
            room = asyncio.ensure_future(self._room.wait())
            await asyncio.wait({room, worker}, return_when=asyncio.FIRST_COMPLETED)
            room.cancel()
        if worker.done():  # the handler failed: surface it here, in the agent
            worker.result()

    async def _handle_forever(self, stream: Any) -> None:
        while True:
            await self._arrived.wait()
            await self._fill()
            batch = self._take()
            await self.handler(batch)
            for event in batch:
                await stream.ack(event)

    def behind(self) -> bool:
        """Is the consumer holding a backlog for this agent (see the module docstring)?"""
        return self.lag is not None and self.lag() >= self.backlog_min

    async def _fill(self) -> None:
        """Let Faust hand over what it already holds: wait while events keep arriving (a gap
        of ``gap_s`` with none ends the wait), at most ``within_s`` after the first one.

        While the consumer is behind, only a gap of ``within_s`` ends it (a fetch round trip
        is not the end of the backlog) and the limit is ``backlog_within_s``. The gap still
        ends it so that offsets without records at a partition's end (transaction markers on
        Apache Kafka) cost a batch at most ``within_s``, not ``backlog_within_s``."""
        if self.gap_s <= 0 or self.within_s <= 0:
            return
        loop = asyncio.get_running_loop()
        started = last_arrival = loop.time()
        while len(self._buffer) < self.batch_max:
            behind = self.behind()
            left = fill_left(started, loop.time(), behind, self.within_s, self.backlog_within_s)
            if left <= 0:
                return
            seen = len(self._buffer)
            await asyncio.sleep(min(self.gap_s, left))
            now = loop.time()
            if len(self._buffer) > seen:
                last_arrival = now
            elif gap_ends_batch(behind, now - last_arrival, self.within_s):
                return

    def _take(self) -> list[Any]:
        batch = self._buffer[: self.batch_max]
        del self._buffer[: self.batch_max]
        if not self._buffer:
            self._arrived.clear()
        self._room.set()
        return batch


def fill_left(started: float, now: float, behind: bool, within_s: float, backlog_s: float) -> float:
    """Seconds a batch that started filling at ``started`` may still wait for more events."""
    return started + (backlog_s if behind else within_s) - now


def gap_ends_batch(behind: bool, since_last_arrival_s: float, within_s: float) -> bool:
    """A pause in arrivals ends the batch, unless a backlog is behind it: then only a pause
    of ``within_s`` does (records the consumer counts that never come, e.g. markers)."""
    return not behind or since_last_arrival_s >= within_s
