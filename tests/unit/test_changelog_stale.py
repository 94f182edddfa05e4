"""A data dir whose changelog was recreated: its partition is dropped and restored from the start.

``ChangelogStore._read_to_end`` against a fake consumer that behaves as aiokafka does on an
offset past the end (``auto_offset_reset="earliest"``: the next records come from the start).
The live case, a worker started on a kept data dir against new topics, is in
``tests/integration/test_stale_data_dir.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from stream.adapters.changelog_store import ChangelogStore, StaleState
from stream.settings import Settings

TP = TopicPartition("changelog", 2)


@dataclass
class _Record:
    offset: int
    key: bytes
    value: bytes | None


class _Consumer:
    """The changelog partition holds ``records`` (offsets 0..n-1); a position past its end is
    reset to 0, as aiokafka's earliest reset does."""

    def __init__(self, records: list[_Record], start: int) -> None:
        self.records, self.pos = records, start

    async def getmany(self, tp: TopicPartition, timeout_ms: int, max_records: int) -> dict:
        if self.pos > len(self.records):
            self.pos = 0
        out = self.records[self.pos : self.pos + max_records]
        self.pos += len(out)
        return {tp: out} if out else {}

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.records)

    async def position(self, tp: TopicPartition) -> int:
        return self.pos


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChangelogStore]:
    s = ChangelogStore(Settings(), tmp_path / "state")
    yield s
    s.close()


def _read(store: ChangelogStore, records: list[_Record], start: int) -> int:
    consumer = _Consumer(records, start)
    return asyncio.run(store._read_to_end(consumer, TP, 2, start))  # type: ignore[arg-type]


def test_a_changelog_ending_before_the_applied_offset_is_stale(store: ChangelogStore) -> None:
    store.set("old-user", b"old", partition=2)
    store.mark_applied(2, 40)
    new = [_Record(0, b"u1", b"a"), _Record(1, b"u2", b"b")]
    with pytest.raises(StaleState) as raised:
        _read(store, new, 41)
    assert (raised.value.start, raised.value.end) == (41, 2)
    assert store.get("u1", partition=2) is None  # nothing of it applied before the check


def test_an_empty_recreated_changelog_is_stale_too(store: ChangelogStore) -> None:
    store.mark_applied(2, 0)  # one record applied; the new topic has none
    with pytest.raises(StaleState):
        _read(store, [], 1)


def test_a_changelog_caught_up_or_ahead_is_not_stale(store: ChangelogStore) -> None:
    log = [_Record(i, b"u%d" % i, b"v%d" % i) for i in range(5)]
    store.mark_applied(2, 4)
    assert _read(store, log, 5) == 0  # at the end: nothing to read, not stale
    log.append(_Record(5, b"u1", None))  # a later write (a forget) to apply
    assert _read(store, log, 5) == 1 and store.applied_offset(2) == 5


def test_dropping_a_partition_keeps_the_others(store: ChangelogStore) -> None:
    for p in (1, 2, 3, 12, 20):
        store.set("u", b"%d" % p, partition=p)
        store.mark_applied(p, 9)
    store.drop_partition(2)
    assert list(store.keys_of(2)) == [] and store.applied_offset(2) == -1
    for p in (1, 3, 12, 20):  # "2/" only: not "20/", not "12/"
        assert store.get("u", partition=p) == b"%d" % p and store.applied_offset(p) == 9


def test_recovery_drops_a_stale_partition_and_restores_the_new_changelog(
    store: ChangelogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_recover`` with the fake consumer: the old users go, the new changelog's come in."""
    store.set("old-user", b"old", partition=2)
    store.mark_applied(2, 40)
    new = [_Record(0, b"u1", b"a"), _Record(1, b"u2", b"b")]

    class _Live(_Consumer):
        def __init__(self) -> None:
            super().__init__(new, 0)

        async def start(self) -> None: ...

        def assign(self, tps: list[TopicPartition]) -> None: ...

        def seek(self, tp: TopicPartition, offset: int) -> None:
            self.pos = offset

    from stream.adapters import changelog_store

    async def _stopped(consumer: object) -> None: ...

    monkeypatch.setattr(changelog_store, "standalone_consumer", lambda *a, **k: _Live())
    monkeypatch.setattr(changelog_store, "stop_consumer", _stopped)
    store.topic = TP.topic
    asyncio.run(store._recover(2))
    assert sorted(store.keys_of(2)) == ["u1", "u2"] and store.applied_offset(2) == 1
    assert store.restored_records == 2


def test_a_data_dir_of_another_changelog_is_dropped_whole(tmp_path: Path) -> None:
    def opened(prefix: str) -> ChangelogStore:
        return ChangelogStore(Settings(topic_prefix=prefix), tmp_path / "state")

    first = opened("shop-a-")
    first.set("u", b"a's user", partition=1)
    first.mark_applied(1, 7)
    first.close()
    again = opened("shop-a-")  # the same deployment: kept
    assert again.get("u", partition=1) == b"a's user" and again.applied_offset(1) == 7
    again.close()
    other = opened("shop-b-")  # another deployment's changelog: nothing of shop a's
    assert list(other.keys_of(1)) == [] and other.applied_offset(1) == -1
    other.set("v", b"b's user", partition=1)
    other.close()
    reopened = opened("shop-b-")
    assert list(reopened.keys_of(1)) == ["v"]
    reopened.close()


def test_a_data_dir_from_before_the_identity_is_kept(tmp_path: Path) -> None:
    from stream.adapters import changelog_store

    old = ChangelogStore(Settings(), tmp_path / "state")
    old.set("u", b"kept", partition=0)
    old._db.delete(changelog_store._IDENTITY)  # as an older release left it
    old.close()
    now = ChangelogStore(Settings(topic_prefix="any-"), tmp_path / "state")
    assert now.get("u", partition=0) == b"kept"  # (the offset check still guards it)
    now.close()
