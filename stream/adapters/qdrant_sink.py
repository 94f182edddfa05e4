"""Qdrant `users` sink: latest ranked list per user, written off the hot path.

Two adapters implement :class:`UserSink` — an embedded Qdrant Edge shard (the default, see
``qdrant_edge_sink``) and qdrant-client against a server (``qdrant_client_sink``). Workers never
call a sink per event: they hand points to :class:`CoalescingWriter`, which keeps only the newest
list per user and flushes batches from a thread every few milliseconds, measuring the lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

#: Fixed namespace so every worker (and every restart) maps a user to the same point id.
USER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "recstream:users")
DEFAULT_DIM = 64
#: Payload fields the sinks index (keyword) so ops queries like "who holds item X" stay cheap.
INDEXED_FIELDS: tuple[str, ...] = ("user_id", "item_ids")


def point_id(user_id: str) -> str:
    """Deterministic UUID5 for a user: Qdrant ids must be unsigned ints or UUIDs, not free text."""
    return str(uuid.uuid5(USER_NAMESPACE, user_id))


@dataclass(slots=True)
class UserPoint:
    """One user's latest ranked list (payload) and dense representation (vector)."""

    user_id: str
    vector: Any  # list[float] or a 1-d numpy array; converted in the sink's thread
    payload: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class UserSink(Protocol):
    """Synchronous storage for user points; called from a worker thread, never per event.

    Both adapters also offer ``dim`` (vector size; the writer validates submits against it) and
    ``users_holding(item_id)`` (ops/tests); fakes may leave them out.
    """

    def upsert(self, points: Sequence[UserPoint]) -> None: ...

    def delete(self, user_ids: Sequence[str]) -> None: ...

    def get(self, user_id: str) -> dict[str, Any] | None: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


class RejectedPoints(ValueError):
    """Some points can never be written (bad vector, payload not JSON): the rest were written.

    Raised by ``UserSink.upsert`` after writing the good points, so one poisoned point cannot
    stall every other user's writes in an endless retry loop.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        sample = "; ".join(f"{u}: {e}" for u, e in itertools.islice(errors.items(), 3))
        super().__init__(f"{len(errors)} user point(s) rejected ({sample})")


def vector_list(vector: Any, dim: int) -> list[float]:
    """A plain, finite float list of the expected size (clients want lists; numpy is accepted)."""
    values = vector.tolist() if hasattr(vector, "tolist") else [float(v) for v in vector]
    if len(values) != dim:
        raise ValueError(f"user vector has {len(values)} dimensions, the sink expects {dim}")
    if not all(map(math.isfinite, values)):
        raise ValueError("user vector has NaN or infinite values")
    return values


def _ids_of(items: Any) -> Iterable[str]:
    if isinstance(items, list):
        for it in items:
            if isinstance(it, dict) and "item_id" in it:
                yield str(it["item_id"])
            elif isinstance(it, str):
                yield it


def item_ids_of(payload: dict[str, Any]) -> list[str]:
    """Flat item ids of a ranked-list payload, for the "who holds item X" keyword filter.

    `item_ids` is taken as given, else collected from ``items`` ([{item_id, …}]) and from
    ``feeds`` ({feed: {items: […]}} or {feed: […]}), de-duplicated in rank order.
    """
    given = payload.get("item_ids")
    if isinstance(given, list):
        return [str(i) for i in given]
    ids: dict[str, None] = dict.fromkeys(_ids_of(payload.get("items")))
    feeds = payload.get("feeds")
    if isinstance(feeds, dict):
        for feed in feeds.values():
            ids.update(
                dict.fromkeys(_ids_of(feed.get("items") if isinstance(feed, dict) else feed))
            )
    return list(ids)


def stored_payload(point: UserPoint) -> dict[str, Any]:
    """Payload as stored: the caller's payload plus `user_id` and a flat `item_ids` list."""
    payload = dict(point.payload)
    payload["user_id"] = point.user_id
    payload["item_ids"] = item_ids_of(point.payload)
    return payload


def make_user_sink(
    qdrant_url: str | None, api_key: str | None, data_dir: Path, dim: int = DEFAULT_DIM
) -> UserSink:
    """Edge shard under ``data_dir/qdrant-edge/users`` by default; a server when a URL is set;
    ``local://PATH`` selects qdrant-client's local mode."""
    if qdrant_url is None:
        from stream.adapters.qdrant_edge_sink import EdgeUserSink

        return EdgeUserSink(Path(data_dir) / "qdrant-edge" / "users", dim=dim)
    from stream.adapters.qdrant_client_sink import ClientUserSink

    if qdrant_url.startswith("local://"):
        # qdrant-client's local mode (same API as a server): the stand-in used by tests here,
        # since no Qdrant server runs on these machines. The writer calls from a thread.
        from qdrant_client import QdrantClient

        path = qdrant_url.removeprefix("local://")
        client = (
            QdrantClient(location=":memory:")
            if path in ("", ":memory:")
            else QdrantClient(path=path, force_disable_check_same_thread=True)
        )
        return ClientUserSink(client, dim=dim, owns_client=True)
    return ClientUserSink.from_url(qdrant_url, api_key, dim=dim)


# --------------------------------------------------------------------------------------------
# Coalescing writer
# --------------------------------------------------------------------------------------------

#: A pending entry: the newest point (None = delete) and when the user first became dirty.
_Entry = tuple[UserPoint | None, float]


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
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.sink = sink
        self.flush_s = flush_ms / 1000.0
        self.max_batch = max_batch
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_flush = on_flush
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
        if self._dim is not None and len(point.vector) != self._dim:
            # Rejected here: a wrong-sized vector would poison every batch it joined.
            raise ValueError(f"user vector has {len(point.vector)} dims, sink expects {self._dim}")
        self._put(point.user_id, point)

    def submit_delete(self, user_id: str) -> None:
        """Delete the user's point (forget-user); supersedes any pending upsert."""
        self._put(user_id, None)

    def _put(self, user_id: str, point: UserPoint | None) -> None:
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

    async def _flush_once(self) -> bool:
        batch = self._take_batch()
        self._in_flight = batch
        upserts = [p for p, _ in batch.values() if p is not None]
        deletes = [uid for uid, (p, _) in batch.items() if p is None]
        oldest = min(t for _, t in batch.values())
        done_upserts = False
        t0 = time.monotonic()
        rejected: dict[str, str] = {}
        try:
            if upserts:
                try:
                    await asyncio.to_thread(self.sink.upsert, upserts)
                except RejectedPoints as exc:  # the rest of the batch was written
                    rejected = exc.errors
            done_upserts = True
            if deletes:
                await asyncio.to_thread(self.sink.delete, deletes)
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
            log.error("qdrant sink rejected %d user point(s), dropped: %s", len(rejected), rejected)
        n = len(batch) - len(rejected)
        lag = now - oldest
        st.points_written += n
        st.deletes_written += len(deletes)
        st.flushes += 1
        st.last_lag_seconds = lag
        st.max_lag_seconds = max(st.max_lag_seconds, lag)
        st.last_flush_seconds = now - t0
        if self.on_flush is not None:
            try:
                self.on_flush(n, lag)
            except Exception:
                log.exception("qdrant writer on_flush callback failed")
        return True

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
