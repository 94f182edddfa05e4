"""Batches whose outputs are still on their way to the broker, so the next batch need not wait.

Why: a batch's outputs (lists, changelog records, observations) are acknowledged by the broker
some time after they were sent, and until then its state may not be written locally (the
changelog must be ahead of the store; see ``stream.pipeline``). Waiting for that before taking
the next batch left the worker idle for the round trip after every batch. Measured on the
bundled broker (one worker, `bench --quick` workload at 124 events/s, 20 s): 143 batches, 4.6 s
waiting for delivery in the handler (~32 ms a batch, 23 % of the time), while the worker was
busy 85 % of the time and events queued (p50 75 ms end to end against a 13 ms broker floor).

Here a batch is *planned* (decoded, ranked, its outputs queued on the producer) and its
*completion* (wait for delivery → write state → mark the changelog offsets → feed Qdrant) runs
as a task, chained after the previous batch's, while the next batch is planned:

* completions run in batch order (each awaits the one before), so local writes and changelog
  marks are in order as before, and a batch's events are acknowledged only once it completed;
* the next batch reads the profiles of users whose write is still in flight from here
  (``read``), not from the store, so it folds its events into the newest state;
* at most ``limit`` batches are in flight: a new one waits for the oldest (``admit``); 1 is the
  old behaviour (plan, deliver, write, then the next batch).

Failure is unchanged: a completion that fails stops the worker (the composition root's
``die``), its events and every later batch's are not acknowledged and are re-delivered after
the restart; a later batch whose changelog records were delivered holds the earlier events
too, and the re-delivered events it holds are skipped as replays (offsets in the profile).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

#: (user id, partition, new value or None for a delete): a batch's state writes
Write = tuple[str, int, bytes | None]
#: what ``read`` returns for a user with no write in flight
NOT_PENDING: tuple[bool, bytes | None] = (False, None)


class InFlight:
    """The ordered chain of batch completions and the state writes they hold back."""

    def __init__(self, limit: int = 4) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._seq = 0
        self._pending: dict[str, tuple[int, bytes | None]] = {}
        self._tasks: deque[asyncio.Task[None]] = deque()
        self._tail: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        self._prune()
        return len(self._tasks)

    def read(self, user_id: str) -> tuple[bool, bytes | None]:
        """(True, value) when a batch in flight writes ``user_id`` (value None: a delete)."""
        held = self._pending.get(user_id)
        return NOT_PENDING if held is None else (True, held[1])

    async def admit(self) -> None:
        """Wait until fewer than ``limit`` batches are in flight."""
        self._prune()
        while len(self._tasks) >= self.limit:
            await asyncio.wait({self._tasks[0]})
            self._prune()

    def start(
        self, writes: Sequence[Write], complete: Callable[[], Awaitable[None]]
    ) -> asyncio.Task[None]:
        """Hold ``writes`` readable until ``complete()`` ran, after the previous batch's."""
        self._seq += 1
        seq = self._seq
        for user_id, _, value in writes:
            self._pending[user_id] = (seq, value)
        previous = self._tail

        async def run() -> None:
            try:
                if previous is not None:
                    if not previous.done():
                        # (wait, not await: cancelling this must not cancel the previous batch)
                        await asyncio.wait({previous})
                    previous.result()  # a failed batch fails the ones after it
                await complete()
            finally:
                for user_id, _, _ in writes:
                    held = self._pending.get(user_id)
                    if held is not None and held[0] == seq:
                        del self._pending[user_id]

        task = asyncio.ensure_future(run())
        self._tail = task
        self._tasks.append(task)
        return task

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait for every batch in flight (at most ``timeout`` s); True when none is left."""
        self._prune()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        return len(self) == 0

    def _prune(self) -> None:
        while self._tasks and self._tasks[0].done():
            self._tasks.popleft()
