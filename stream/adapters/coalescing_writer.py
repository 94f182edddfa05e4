"""Coalescing writer: the latest list per user, flushed to a UserSink in batches off the hot path.

Workers call ``submit`` (O(1), no I/O) on every emitted list; a background task writes the newest
point per user every few milliseconds in a worker thread, keeps failed batches and retries, and
reports lag (submit → written) so Qdrant staleness is measured, never guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stream.adapters.qdrant_sink import RejectedPoints, UserPoint, UserSink

log = logging.getLogger(__name__)


#: Builds a user's point at its flush (``submit_lazy``), so a list superseded within the flush
#: window is never built: at a steady 500 events/s with a 100 ms window ~30 % of lists are.
PointBuilder = Callable[[], UserPoint]
#: A pending entry: the newest point or its builder (None = delete) and when the user first
#: became dirty.
_Entry = tuple[UserPoint | PointBuilder | None, float]


@dataclass
class WriterStats:
    """Counters a caller can export; lag = first unwritten submit → write confirmed."""

    submitted: int = 0
    coalesced: int = 0  # submits that replaced a still-pending version of the same user
    points_written: int = 0  # upserts + deletes confirmed by the sink
    deletes_written: int = 0
    flushes: int = 0
    errors: int = 0  # failed sink calls (retried)
    rejected: int = 0  # points the sink can never store (see RejectedPoints), dropped loudly
    last_lag_seconds: float = 0.0
    max_lag_seconds: float = 0.0
    last_flush_seconds: float = 0.0  # duration of the last sink call(s)
    #: CPU time of the writer's thread inside sink calls (building the sink's points and
    #: writing them): the serving copy's cost, against the worker's whole CPU
    cpu_seconds: float = 0.0
    last_error: str | None = None
    pending: int = 0


class CoalescingWriter:
    """Keeps Qdrant off the per-event path: newest point per user wins, batches flushed in a thread.

    ``submit``/``submit_delete`` must be called from the event loop's thread (Faust agents do);
    they are O(1) and never block. Pending memory is bounded by the number of dirty users, so an
    outage of the sink grows the dict but never the per-event cost. Failed batches are merged back
    (newer submits win) and retried with exponential backoff; nothing is dropped silently (only
    points a sink rejects as unstorable are dropped, logged and counted). The writer keeps a
    reference to each submitted payload: do not mutate it after ``submit``.
    """

    def __init__(
        self,
        sink: UserSink,
        *,
        flush_ms: float = 5.0,
        max_batch: int = 1000,
        retry_backoff_s: float = 0.05,
        max_backoff_s: float = 5.0,
        on_flush: Callable[[int, float], None] | None = None,
        on_call: Callable[[int, float, bool, int], None] | None = None,
        on_cpu: Callable[[float], None] | None = None,
        on_build_cpu: Callable[[float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.sink = sink
        self.flush_s = flush_ms / 1000.0
        self.max_batch = max_batch
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_flush = on_flush
        #: after every sink call: (points, seconds, failed, rejected points) — for metrics
        self.on_call = on_call
        #: after every sink call: CPU seconds its thread spent in it (see ``WriterStats``)
        self.on_cpu = on_cpu
        #: after every flush that built lazily submitted points: the CPU seconds it took
        self.on_build_cpu = on_build_cpu
        self._dim: int | None = getattr(sink, "dim", None)
        self._pending: dict[str, _Entry] = {}
        self._in_flight: dict[str, _Entry] = {}
        self._stats = WriterStats()
        self._consecutive_errors = 0
        self._wake = asyncio.Event()  # pending became non-empty, or stop requested
        self._full = asyncio.Event()  # pending reached max_batch, or stop requested
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    # -- producer side (event loop thread, O(1)) ----------------------------------------------
    def submit(self, point: UserPoint) -> None:
        """Record the newest point for its user; the background loop writes it soon."""
        self._check_dim(point)  # here: a wrong-sized vector would poison every batch it joined
        self._put(point.user_id, point)

    def _check_dim(self, point: UserPoint) -> None:
        if self._dim is not None and len(point.vector) != self._dim:
            raise ValueError(f"user vector has {len(point.vector)} dims, sink expects {self._dim}")

    def submit_lazy(self, user_id: str, build: PointBuilder) -> None:
        """Like ``submit``, with the point built by ``build()`` on the event loop when it is
        flushed, and only if no newer submit for the user replaced it. ``build`` must read
        nothing that changes before then. A build that raises, or returns a vector of the
        wrong size, drops that point, counted and logged as rejected."""
        self._put(user_id, build)

    def submit_delete(self, user_id: str) -> None:
        """Delete the user's point (forget-user); supersedes any pending upsert."""
        self._put(user_id, None)

    def _put(self, user_id: str, point: UserPoint | PointBuilder | None) -> None:
        if self._stopped:
            raise RuntimeError("CoalescingWriter is stopped")
        pending = self._pending
        prev = pending.get(user_id)
        if prev is None:
            pending[user_id] = (point, time.monotonic())
        else:
            pending[user_id] = (point, prev[1])  # keep the first dirty time: honest staleness
            self._stats.coalesced += 1
        self._stats.submitted += 1
        self._idle.clear()
        self._wake.set()
        if len(pending) >= self.max_batch:
            self._full.set()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the background flush loop (idempotent)."""
        if self._task is None:
            self._spawn()

    def _spawn(self) -> None:
        self._task = asyncio.create_task(self._run(), name="qdrant-coalescing-writer")
        self._task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "qdrant writer loop died; %d points pending",
                self.pending,
                exc_info=task.exception(),
            )

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Flush everything pending, then end the loop; the sink stays open (caller owns it)."""
        self._stopping = True
        self._wake.set()
        self._full.set()
        if self._task is None:
            self._spawn()
        assert self._task is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            log.error(
                "qdrant writer stopped with %d user points NOT written (sink failing: %s)",
                self.pending,
                self._stats.last_error,
            )
        self._stopped = True

    async def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once nothing is pending or in flight (tests, graceful handover)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._in_flight)

    @property
    def oldest_pending_seconds(self) -> float:
        """Age of the oldest point not yet confirmed written (0 when idle): Qdrant staleness
        while the sink is down, when no flush completes to report a lag."""
        firsts = [t for _, t in self._in_flight.values()]
        if self._pending:
            firsts.append(next(iter(self._pending.values()))[1])
        return time.monotonic() - min(firsts) if firsts else 0.0

    @property
    def stats(self) -> WriterStats:
        """A snapshot of the counters (with the current pending count)."""
        snap = WriterStats(**vars(self._stats))
        snap.pending = self.pending
        return snap

    # -- background loop ----------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                if self._stopping:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            if not self._stopping and len(self._pending) < self.max_batch:
                # Coalescing window: flush once the oldest dirty user is flush_ms old.
                oldest = next(iter(self._pending.values()))[1]
                delay = oldest + self.flush_s - time.monotonic()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), delay)
            self._full.clear()
            ok = await self._flush_once()
            if not ok:
                await self._backoff()

    async def _backoff(self) -> None:
        """Exponential pause after a failed write; stop() bounds the total with its timeout."""
        exp = min(self._consecutive_errors - 1, 30)
        await asyncio.sleep(min(self.max_backoff_s, self.retry_backoff_s * 2**exp))

    def _take_batch(self) -> dict[str, _Entry]:
        if len(self._pending) <= self.max_batch:
            batch, self._pending = self._pending, {}
            return batch
        # Oldest dirty users first: dict order is first-dirty order (updates keep position).
        batch = dict(itertools.islice(self._pending.items(), self.max_batch))
        for uid in batch:
            del self._pending[uid]
        return batch

    def _build(self, batch: dict[str, _Entry]) -> dict[str, str]:
        """Lazily submitted points built in place; those that fail leave ``batch`` and are
        returned with their reasons (deterministic: a retry would fail again)."""
        failed: dict[str, str] = {}
        started = time.thread_time()
        built = 0
        for uid, (point, first) in list(batch.items()):
            if point is None or not callable(point):
                continue
            built += 1
            try:
                made = point()
                self._check_dim(made)
            except Exception as exc:
                failed[uid] = f"{type(exc).__name__}: {exc}"
                del batch[uid]
                continue
            batch[uid] = (made, first)
        if failed:
            self._stats.rejected += len(failed)
            log.error(
                "qdrant user point(s) could not be built, %d dropped: %s",
                len(failed),
                "; ".join(sorted(set(failed.values()))[:3]),
            )
        if built and self.on_build_cpu is not None:
            try:
                self.on_build_cpu(time.thread_time() - started)
            except Exception:
                log.exception("qdrant writer on_build_cpu callback failed")
        return failed

    async def _flush_once(self) -> bool:
        batch = self._take_batch()
        oldest = min(t for _, t in batch.values())
        unbuilt = self._build(batch)
        self._in_flight = batch
        upserts = [p for p, _ in batch.values() if p is not None and not callable(p)]
        deletes = [uid for uid, (p, _) in batch.items() if p is None]
        done_upserts = False
        t0 = time.monotonic()
        rejected: dict[str, str] = {}
        try:
            if upserts:
                try:
                    await self._in_thread(self.sink.upsert, upserts)
                except RejectedPoints as exc:  # the rest of the batch was written
                    rejected = exc.errors
            done_upserts = True
            if deletes:
                await self._in_thread(self.sink.delete, deletes)
        except asyncio.CancelledError:
            self._remerge(batch, done_upserts)
            raise
        except Exception as exc:
            self._consecutive_errors += 1
            self._stats.errors += 1
            self._stats.last_error = f"{type(exc).__name__}: {exc}"
            if done_upserts:  # only the deletes failed; the upserts are in the sink
                self._stats.points_written += len(upserts) - len(rejected)
                self._stats.rejected += len(rejected)
            self._remerge(batch, done_upserts)
            self._report_call(len(batch), time.monotonic() - t0, True, len(unbuilt))
            log.exception(
                "qdrant sink write failed (%d points kept for retry, attempt %d)",
                len(batch),
                self._consecutive_errors,
            )
            return False
        finally:
            self._in_flight = {}
        now = time.monotonic()
        self._consecutive_errors = 0
        st = self._stats
        if rejected:
            # Deterministic data errors: retrying cannot help, so drop them, loudly and counted.
            st.rejected += len(rejected)
            # the reasons, not the user ids (no personal data in logs above DEBUG)
            log.error(
                "qdrant sink rejected %d user point(s), dropped: %s",
                len(rejected),
                "; ".join(sorted(set(rejected.values()))[:3]),
            )
        n = len(batch) - len(rejected)
        lag = now - oldest
        st.points_written += n
        st.deletes_written += len(deletes)
        st.flushes += 1
        st.last_lag_seconds = lag
        st.max_lag_seconds = max(st.max_lag_seconds, lag)
        st.last_flush_seconds = now - t0
        self._report_call(len(batch), now - t0, False, len(rejected) + len(unbuilt))
        if self.on_flush is not None:
            try:
                self.on_flush(n, lag)
            except Exception:
                log.exception("qdrant writer on_flush callback failed")
        return True

    async def _in_thread(self, call: Callable[[Any], None], arg: Any) -> None:
        """``call(arg)`` in a worker thread, its thread's CPU time counted (even if it raises):
        wall time would count the GIL waits of a thread that shares the GIL with the loop."""
        spent = [0.0]

        def timed() -> None:
            started = time.thread_time()
            try:
                call(arg)
            finally:
                spent[0] = time.thread_time() - started

        try:
            await asyncio.to_thread(timed)
        finally:
            self._stats.cpu_seconds += spent[0]
            if self.on_cpu is not None and spent[0] > 0:
                try:
                    self.on_cpu(spent[0])
                except Exception:
                    log.exception("qdrant writer on_cpu callback failed")

    def _report_call(self, points: int, seconds: float, failed: bool, rejected: int) -> None:
        if self.on_call is not None:
            try:
                self.on_call(points, seconds, failed, rejected)
            except Exception:
                log.exception("qdrant writer on_call callback failed")

    def _remerge(self, batch: dict[str, _Entry], upserts_done: bool) -> None:
        """Put a failed batch back in front; a newer pending version of a user wins."""
        merged: dict[str, _Entry] = {}
        for uid, (point, t) in batch.items():
            if upserts_done and point is not None:
                continue  # this part reached the sink
            newer = self._pending.pop(uid, None)
            merged[uid] = (point, t) if newer is None else (newer[0], min(t, newer[1]))
        merged.update(self._pending)
        self._pending = merged
