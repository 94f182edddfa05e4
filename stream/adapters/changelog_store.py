"""User state in local RocksDB, made durable by our own changelog topic (not a Faust Table).

Why not Faust's Table: its changelog goes through Faust's producer, which on the bundled broker
must send one record per request (wrong end offsets otherwise break Faust's recovery), and which
delivers asynchronously to the input commit. Measured here: after a SIGKILL the changelog could lack
state the local store had, and later recoveries silently lost those events. This store instead:

* writes a user's new state to the changelog *with the batch's other outputs*, on the batching
  output producer, and waits for delivery (``Pipeline.commit``) before the local write and before
  the input offsets are acknowledged — so the durable copy is never behind an acknowledged event;
* keeps, per partition, the highest changelog offset it has applied locally;
* before serving a partition it now owns, reads that partition's changelog from there to its end
  (the end is taken from fetch responses' high-water mark, correct on the bundled broker too) —
  recovery after a restart, a lost data dir (read from offset 0) or a rebalance;
* drops a partition's local state and restores it from the changelog's start when the changelog
  ends before the offset the data dir says it applied: the topics were recreated (a reset
  cluster, another cluster or prefix) while the data dir was kept. Kept, that state's users
  would hold the old cluster's input offsets, so the new cluster's events below them were taken
  for replays and answered with nothing. (Kafka Streams wipes a store in the same case.)
* remembers which changelog topic its data dir serves, and drops a data dir written for another
  (another deployment's prefix or app id) whole: its users are not this deployment's, and
  offsets cannot tell it once the other changelog has grown past them.

Keys are ``<partition>/<user_id>`` so the users of one partition can be listed (stock index).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Set
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.adapters.consumer_task import stop_consumer
from stream.adapters.follower import standalone_consumer
from stream.settings import Settings

log = logging.getLogger(__name__)

_META = b"\x00offset/"
#: the changelog topic the data dir serves (written at the first open)
_IDENTITY = b"\x00changelog"


class StaleState(Exception):
    """The changelog ends before what the local store applied: not this changelog's state."""

    def __init__(self, partition: int, start: int, end: int) -> None:
        super().__init__(f"partition {partition}: changelog ends at {end}, data dir at {start}")
        self.partition, self.start, self.end = partition, start, end


def changelog_name(settings: Settings) -> str:
    """Logical name of the profiles changelog (compacted on Apache Kafka; see compose.yaml)."""
    return f"{settings.app_id}-profiles-changelog"


class ChangelogStore:
    """RocksDB (rocksdict) per worker; the changelog topic is the source of truth."""

    def __init__(self, settings: Settings, path: Path) -> None:
        from rocksdict import AccessType, Rdict

        from stream.adapters.rocks_options import bounded_options

        path.mkdir(parents=True, exist_ok=True)
        options = bounded_options()
        self._db = Rdict(str(path), options=options, access_type=AccessType.read_write())
        self.settings = settings
        self.topic = settings.topic(changelog_name(settings))
        self.recovered: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self._generation = 0  # assignments seen (forget_assignment)
        self._background: set[asyncio.Task[None]] = set()
        self.restored_records = 0
        self._check_identity()

    def _check_identity(self) -> None:
        """Drop a data dir written for another changelog topic. One written before the identity
        was kept (no record of it) is taken as this topic's: the offset check still applies."""
        mine = self.topic.encode()
        stored = self._db.get(_IDENTITY)
        if stored is not None and bytes(stored) != mine:
            log.warning(
                "the data dir's state belongs to changelog %r, not %r (another deployment's "
                "data dir?): dropping it; partitions are restored from this changelog",
                bytes(stored).decode(errors="replace"),
                self.topic,
            )
            self._db.delete_range(b"\x00", b"\xff")  # (keys start with a digit or \x00)
        self._db.put(_IDENTITY, mine)

    # -- StateStore ------------------------------------------------------------------------------
    @staticmethod
    def _key(key: str, partition: int | None) -> bytes:
        if partition is None:
            raise ValueError("the changelog store needs the key's partition")
        return b"%d/" % partition + key.encode()

    def get(self, key: str, partition: int | None = None) -> bytes | None:
        value = self._db.get(self._key(key, partition))
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, partition: int | None = None) -> None:
        self._db.put(self._key(key, partition), value)

    def delete(self, key: str, partition: int | None = None) -> None:
        self._db.delete(self._key(key, partition))

    def keys(self) -> Iterator[str]:
        """Users of the partitions this worker currently serves."""
        for partition in sorted(self.recovered):
            yield from self.keys_of(partition)

    def owned(self) -> Iterator[tuple[int | None, str]]:
        for partition in sorted(self.recovered):
            for key in self.keys_of(partition):
                yield partition, key

    def keys_of(self, partition: int) -> Iterator[str]:
        prefix = b"%d/" % partition
        for key in self._db.keys(from_key=prefix):
            raw = bytes(key)  # type: ignore[arg-type]
            if not raw.startswith(prefix):
                break
            yield raw[len(prefix) :].decode()

    def user_count(self) -> int:
        """Exact users of the served partitions, by iterating keys (~0.6 µs a key; RocksDB's
        ``estimate-num-keys`` counts overwrites still in memtables, so it is not used)."""
        return sum(1 for _ in self.owned())

    def size_bytes(self) -> int:
        """SST files + memtables (O(1) RocksDB properties)."""
        props = ("rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables")
        return sum(int(self._db.property_int_value(p) or 0) for p in props)

    # -- changelog bookkeeping ---------------------------------------------------------------
    def applied_offset(self, partition: int) -> int:
        raw = self._db.get(_META + str(partition).encode())
        return -1 if raw is None else int(bytes(raw))

    def mark_applied(self, partition: int, offset: int) -> None:
        if offset > self.applied_offset(partition):
            self._db.put(_META + str(partition).encode(), str(offset).encode())

    def drop_partition(self, partition: int) -> None:
        """Every local key of ``partition`` and its applied offset (a stale partition)."""
        self._db.delete_range(b"%d/" % partition, b"%d0" % partition)  # "0" follows "/"
        self._db.delete(_META + str(partition).encode())

    def forget_assignment(self) -> None:
        """After a rebalance: re-read each partition's changelog tail before serving it again
        (another worker may have written it meanwhile). A recovery still running from before
        does not count: its partition is read again (see ``_ensure``)."""
        self.recovered.clear()
        self._generation += 1

    async def ensure_recovered(self, partitions: Set[int]) -> None:
        """Recover the partitions not recovered yet, all at once (each with its own consumer:
        one after the other, a fresh worker's first batches waited ~0.25 s per partition)."""
        missing = sorted(partitions - self.recovered)
        if missing:
            await asyncio.gather(*(self._ensure(p) for p in missing))

    def recover_soon(self, partitions: Set[int]) -> asyncio.Task[None]:
        """Start recovering ``partitions`` now, in the background: called on an assignment, so
        the first batch finds its state ready instead of waiting for the changelog reads. A
        failure is logged; the next batch of that partition then recovers it itself."""
        task = asyncio.ensure_future(self.ensure_recovered(partitions))
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "background state recovery failed (batches retry)", exc_info=task.exception()
            )

    async def _ensure(self, partition: int) -> None:
        lock = self._locks.setdefault(partition, asyncio.Lock())
        async with lock:
            while partition not in self.recovered:
                generation = self._generation
                await self._recover(partition)
                if generation == self._generation:  # else a rebalance came meanwhile: again
                    self.recovered.add(partition)

    async def _recover(self, partition: int) -> None:
        started = time.monotonic()
        start = self.applied_offset(partition) + 1
        consumer = standalone_consumer(self.settings, fetch_bytes=8 * 1024 * 1024)
        await consumer.start()
        restored = 0
        try:
            tp = TopicPartition(self.topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            try:
                restored = await self._read_to_end(consumer, tp, partition, start)
            except StaleState as stale:
                log.warning(
                    "state partition %d: the changelog ends at offset %d, before this data "
                    "dir's %d (topics recreated, or another cluster's data dir): dropping the "
                    "partition's local state and restoring it from the changelog's start",
                    partition,
                    stale.end,
                    start,
                )
                self.drop_partition(partition)
                start = 0
                consumer.seek(tp, 0)
                restored = await self._read_to_end(consumer, tp, partition, 0)
        finally:
            await stop_consumer(consumer)
        self.restored_records += restored
        log.info(
            "state partition %d: %d changelog records from offset %d in %.2fs",
            partition,
            restored,
            start,
            time.monotonic() - started,
        )

    async def _read_to_end(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, p: int, start: int
    ) -> int:
        """Apply the changelog from ``start`` to its end; StaleState, before applying anything,
        when it ends before ``start`` (the consumer, reset to the earliest offset, then brings
        records from before ``start``)."""
        restored = empty = 0
        while True:
            batches = await consumer.getmany(tp, timeout_ms=200, max_records=10_000)
            records = batches.get(tp, [])
            highwater = consumer.highwater(tp)
            if start > 0 and (
                (highwater is not None and highwater < start)
                or (records and records[0].offset < start)
            ):
                raise StaleState(p, start, highwater if highwater is not None else -1)
            for record in records:
                user = (record.key or b"").decode()
                if record.value is None:
                    self.delete(user, p)
                else:
                    self.set(user, record.value, p)
                self.mark_applied(p, record.offset)
                restored += 1
            position = await consumer.position(tp)
            if highwater is not None and position >= highwater:
                return restored
            empty = 0 if records else empty + 1
            if empty >= 25 and highwater is None:  # nothing fetched for 5 s: an empty topic
                return restored

    def close(self) -> None:
        for task in list(self._background):  # no changelog read may write to a closed store
            task.cancel()
        self._db.close()


def delivered_offset(metadata: Any) -> int | None:
    """The offset a delivered record got (aiokafka RecordMetadata), if known."""
    offset = getattr(metadata, "offset", None)
    return int(offset) if isinstance(offset, int) else None
