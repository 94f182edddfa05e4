"""Snapshots of what `learned` taught a worker, on its data dir, so a restart reads on from there.

Without one, every start re-reads `learned` from its beginning (the topic grows with every
event). With ``RECSTREAM_LEARNED_SNAPSHOT_S`` > 0 the catalog replica writes the learner's state
(``stream.domain.learned_snapshot``) with, per `learned` partition, the position after the last
record it applied — every that many seconds and at a clean stop — and a starting worker that
finds one restores it and follows `learned` from those positions.

A snapshot is only trusted when the topic still holds what it was taken against: for every
partition read past 0, the record just before the saved position must still be there with the
same key and timestamp. A topic deleted and recreated (a wiped bundled broker, a new cluster) or
a retention that dropped that record makes the worker read from the beginning instead, as
without a snapshot, and says so in its log. A lost or unreadable file does the same.

Format: one ``.npz`` (numpy arrays, no pickle) with the JSON meta as a byte array; written to a
temporary file, fsynced and renamed, so a crash mid-write leaves the previous snapshot.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import TopicPartition

from stream.adapters.consumer_task import stop_consumer
from stream.adapters.follower import standalone_consumer, topic_partitions
from stream.domain.learned_snapshot import Arrays, SnapshotMismatch, capture, restore
from stream.domain.learning import Learner
from stream.settings import Settings

log = logging.getLogger(__name__)

FILE_NAME = "learned.snapshot.npz"


@dataclass(frozen=True)
class Applied:
    """The last record applied from one `learned` partition (what a snapshot is checked by)."""

    offset: int
    timestamp: int
    key: bytes | None

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "ts": self.timestamp, "key": (self.key or b"").hex()}


@dataclass
class Snapshot:
    meta: dict[str, Any]
    arrays: Arrays
    path: Path | None = None

    @property
    def records_read(self) -> int:
        """How much of the topic it covers (of two valid snapshots, the larger is newer)."""
        return sum(int(a["offset"]) + 1 for a in self.meta.get("positions", {}).values())

    @property
    def positions(self) -> dict[int, dict[str, Any]]:
        """Per `learned` partition, its last applied record (``Applied.to_json``)."""
        return {int(p): v for p, v in self.meta.get("positions", {}).items()}


class LearnedSnapshots:
    """Reads and writes one worker's snapshot file; checks it against the topic."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self.settings = settings
        self.topic = settings.topic("learned")
        self.path = directory / FILE_NAME
        #: a folder every worker of the deployment shares (``RECSTREAM_LEARNED_SNAPSHOT_SHARED``):
        #: each snapshot is copied there too, so a worker with an empty data dir starts from
        #: the latest one any worker wrote (the models are the same on every worker)
        shared = settings.learned_snapshot_shared
        self.shared = shared / f"{self.topic}.npz" if shared is not None else None
        self.written = 0
        self.written_at = 0.0  # epoch seconds of the last snapshot written (0: none yet)
        self.last_loop_seconds = 0.0  # how long the last capture held the event loop
        self._lock = threading.Lock()

    def capture(
        self, learner: Learner, applied: dict[int, Applied]
    ) -> tuple[dict[str, Any], Arrays]:
        """The snapshot's content (copies). On the event loop, between two applied records:
        that makes it a consistent point (the learner's state and ``applied`` agree); timed in
        ``last_loop_seconds``, the one part of a snapshot that holds the loop."""
        started = time.perf_counter()
        meta, arrays = capture(learner)
        meta["topic"] = self.topic
        meta["positions"] = {str(p): a.to_json() for p, a in sorted(applied.items())}
        self.last_loop_seconds = time.perf_counter() - started
        return meta, arrays

    def write(self, meta: dict[str, Any], arrays: Arrays) -> None:
        """Encode and atomically replace the file. May run in a thread (the content is a copy);
        writes are serialised, so a clean stop's snapshot, taken after a periodic one still
        being written, lands last."""
        started = time.perf_counter()
        buffer = io.BytesIO()
        payload: dict[str, Any] = {**arrays, "meta": np.frombuffer(orjson.dumps(meta), np.uint8)}
        np.savez(buffer, **payload)
        with self._lock:
            _replace(self.path, buffer.getbuffer())
            if self.shared is not None:
                try:
                    _replace(self.shared, buffer.getbuffer())
                except OSError as exc:  # the local one is written: a restart is still quick
                    log.warning("learned snapshot not copied to %s: %s", self.shared, exc)
        self.written += 1
        self.written_at = time.time()
        log.info(
            "learned snapshot written: %d observations applied, %.1f KB, %.0f ms "
            "(%.0f ms of it on the event loop)",
            meta["applied"],
            buffer.getbuffer().nbytes / 1024,
            (self.last_loop_seconds + time.perf_counter() - started) * 1000,
            self.last_loop_seconds * 1000,
        )

    def save(self, learner: Learner, applied: dict[int, Applied]) -> None:
        """Capture and write now (a clean stop)."""
        self.write(*self.capture(learner, applied))

    async def save_soon(self, learner: Learner, applied: dict[int, Applied]) -> None:
        """Capture on the loop, encode and write in a thread (the periodic snapshots)."""
        meta, arrays = self.capture(learner, applied)
        await asyncio.to_thread(self.write, meta, arrays)

    def load(self, path: Path | None = None) -> Snapshot | None:
        """The snapshot at ``path`` (default: the local one), or None (absent, unreadable or
        of another topic: logged)."""
        path = path or self.path
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = orjson.loads(arrays.pop("meta").tobytes())
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("learned snapshot %s unreadable (%s): not used", path, exc)
            return None
        if not isinstance(meta, dict) or not isinstance(meta.get("positions"), dict):
            log.warning("learned snapshot %s has no positions: not used", path)
            return None
        if meta.get("topic") != self.topic:
            log.warning("learned snapshot is of topic %r, not %r: not used",
                        meta.get("topic"), self.topic)  # fmt: skip
            return None
        return Snapshot(meta, arrays, path)

    async def still_valid(self, snapshot: Snapshot, timeout_s: float = 10.0) -> bool:
        """Does the topic still hold, at each saved position, the record the snapshot saw?"""
        expected = {p: a for p, a in snapshot.positions.items() if a["offset"] >= 0}
        consumer = standalone_consumer(self.settings)
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, self.topic)
            if not set(snapshot.positions) <= partitions:
                return False
            if not expected:
                return True
            tps = {p: TopicPartition(self.topic, p) for p in expected}
            consumer.assign(list(tps.values()))
            for p, tp in tps.items():
                consumer.seek(tp, expected[p]["offset"])
            return await _first_records_match(consumer, tps, expected, timeout_s)
        finally:
            await stop_consumer(consumer)

    async def restore_into(self, learner: Learner) -> dict[int, Applied]:
        """Restore the newest valid snapshot (local or shared) into ``learner``; per `learned`
        partition the last record it had applied, to follow on from (empty: from the start).
        Nothing a snapshot file holds can stop the worker: a bad one is logged and skipped."""
        found = [s for p in (self.path, self.shared) if p is not None and (s := self.load(p))]
        for snapshot in sorted(found, key=_records_read, reverse=True):
            try:
                applied = await self._restore(learner, snapshot)
            except Exception:  # a damaged file must not keep a worker down
                log.warning("learned snapshot %s not used", snapshot.path, exc_info=True)
                continue
            if applied is not None:
                return applied
        if found:
            log.warning("no usable learned snapshot: reading learned from the start")
        return {}

    async def _restore(self, learner: Learner, snapshot: Snapshot) -> dict[int, Applied] | None:
        positions = {
            p: Applied(int(a["offset"]), int(a["ts"]), bytes.fromhex(a["key"]) or None)
            for p, a in snapshot.positions.items()
        }
        if not await self.still_valid(snapshot):
            log.warning("learned snapshot %s does not match the topic any more (recreated, "
                        "or its records expired): not used", snapshot.path)  # fmt: skip
            return None
        try:
            dropped = restore(learner, snapshot.meta, snapshot.arrays)
        except SnapshotMismatch as exc:
            log.warning("learned snapshot %s not used: %s", snapshot.path, exc)
            return None
        log.info("learned snapshot restored from %s: %d observations, %d items no longer "
                 "in the catalog", snapshot.path, learner.applied, dropped)  # fmt: skip
        return positions


def _records_read(snapshot: Snapshot) -> int:
    try:
        return snapshot.records_read
    except (KeyError, TypeError, ValueError, AttributeError):
        return -1  # damaged: tried last (and refused by ``_restore``)


def _replace(path: Path, data: memoryview) -> None:
    """Write ``data`` to ``path`` atomically: a uniquely named temporary file (several workers
    may write one shared path), fsynced, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


async def _first_records_match(
    consumer: Any,
    tps: dict[int, TopicPartition],
    expected: dict[int, dict[str, Any]],
    timeout_s: float,
) -> bool:
    """Each partition's first fetched record is the expected one (offset, timestamp, key)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = dict(tps)
    while pending and loop.time() < deadline:
        batches = await consumer.getmany(*pending.values(), timeout_ms=200, max_records=1)
        for tp, records in batches.items():
            if not records:
                continue
            record, want = records[0], expected[tp.partition]
            key = (record.key or b"").hex()
            if (record.offset, record.timestamp, key) != (want["offset"], want["ts"], want["key"]):
                return False
            pending.pop(tp.partition, None)
    return not pending
