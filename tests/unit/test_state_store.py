"""The same contract for every StateStore: in-memory and RocksDB (rocksdict)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.adapters.state_store import MemoryStore, RocksStore
from stream.domain.profile import UserProfile


@pytest.fixture(params=["memory", "rocks"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore | RocksStore]:
    instance = MemoryStore() if request.param == "memory" else RocksStore(tmp_path / "db")
    yield instance
    instance.close()


def test_missing_key_is_none(store: MemoryStore | RocksStore) -> None:
    assert store.get("nobody") is None
    assert list(store.keys()) == []


def test_set_get_overwrite_delete(store: MemoryStore | RocksStore) -> None:
    store.set("u1", b"one")
    store.set("u2", b"two")
    assert store.get("u1") == b"one"
    assert store.get("u2") == b"two"
    store.set("u1", b"uno")
    assert store.get("u1") == b"uno"
    store.delete("u1")
    assert store.get("u1") is None
    assert store.get("u2") == b"two"
    store.delete("u1")  # deleting a missing key is a no-op
    store.delete("never")
    assert store.get("u2") == b"two"


def test_get_returns_bytes(store: MemoryStore | RocksStore) -> None:
    store.set("k", b"v")
    value = store.get("k")
    assert type(value) is bytes


def test_keys_lists_keys(store: MemoryStore | RocksStore) -> None:
    expected = {"u1", "u-2", "user:ü", "a" * 200}
    for key in expected:
        store.set(key, key.encode())
    store.set("gone", b"x")
    store.delete("gone")
    assert sorted(store.keys()) == sorted(expected)
    for key in expected:
        assert store.get(key) == key.encode()


def test_keys_can_be_iterated_while_deleting(store: MemoryStore | RocksStore) -> None:
    for i in range(5):
        store.set(f"k{i}", b"x")
    for key in list(store.keys()):
        store.delete(key)
    assert list(store.keys()) == []


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00", bytes(range(256)), b"\xff\xfe\x00\x01" * 1000, "naïve ✓".encode()],
    ids=["empty", "nul", "all-bytes", "large-binary", "utf8"],
)
def test_binary_values_roundtrip(store: MemoryStore | RocksStore, value: bytes) -> None:
    store.set("bin", value)
    assert store.get("bin") == value


def test_profile_roundtrip_through_store(store: MemoryStore | RocksStore) -> None:
    profile = UserProfile(
        user_id="u1",
        session={"brand:acme": [1.5, 1.0]},
        queries=[["i1", "view", 5]],
        returned={"i9": 3},
        version=4,
    )
    store.set(profile.user_id, profile.to_bytes())
    raw = store.get("u1")
    assert raw is not None
    assert UserProfile.from_bytes(raw) == profile


def test_rocks_store_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "db"
    first = RocksStore(path)
    first.set("u1", b"\x00\x01keep")
    first.set("u2", b"drop")
    first.set("u3", b"old")
    first.delete("u2")
    first.set("u3", b"new")
    first.close()

    second = RocksStore(path)
    try:
        assert second.get("u1") == b"\x00\x01keep"
        assert second.get("u2") is None
        assert second.get("u3") == b"new"
        assert sorted(second.keys()) == ["u1", "u3"]
    finally:
        second.close()


def test_separate_rocks_stores_are_isolated(tmp_path: Path) -> None:
    a = RocksStore(tmp_path / "a")
    b = RocksStore(tmp_path / "b")
    try:
        a.set("k", b"a")
        assert b.get("k") is None
        assert list(b.keys()) == []
    finally:
        a.close()
        b.close()


def test_changelog_store_keeps_partitions_apart_and_tracks_offsets(tmp_path: Path) -> None:
    from stream.adapters.changelog_store import ChangelogStore
    from stream.settings import Settings

    store = ChangelogStore(Settings(), tmp_path / "state")
    try:
        store.set("u1", b"a", partition=0)
        store.set("u2", b"b", partition=1)
        store.set("u3", b"c", partition=1)
        assert store.get("u2", partition=1) == b"b" and store.get("u2", partition=0) is None
        assert sorted(store.keys_of(1)) == ["u2", "u3"] and list(store.keys_of(0)) == ["u1"]
        store.delete("u3", partition=1)
        assert list(store.keys_of(1)) == ["u2"]
        assert store.applied_offset(1) == -1
        store.mark_applied(1, 41)
        store.mark_applied(1, 7)  # never goes back
        assert store.applied_offset(1) == 41
        store.recovered = {1}
        assert list(store.owned()) == [(1, "u2")]  # only partitions this worker serves
    finally:
        store.close()


class _RecordingStore:
    """A ChangelogStore whose changelog reads are held by the test (no broker)."""

    def __init__(self, tmp_path: Path) -> None:
        from stream.adapters.changelog_store import ChangelogStore
        from stream.settings import Settings

        self.store = ChangelogStore(Settings(), tmp_path / "state")
        self.started: list[int] = []
        self.release = asyncio.Event()

        async def fake_recover(partition: int) -> None:
            self.started.append(partition)
            await self.release.wait()

        self.store._recover = fake_recover  # type: ignore[method-assign]


def test_partitions_recover_together_and_a_batch_waits_for_a_recovery_under_way(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[int], set[int], bool]:
        rec = _RecordingStore(tmp_path)
        try:
            rec.store.recover_soon({0, 1, 2, 3})  # on assignment
            for _ in range(100):  # all four reads under way at once (bounded: no hang)
                if len(rec.started) == 4:
                    break
                await asyncio.sleep(0)
            batch = asyncio.ensure_future(rec.store.ensure_recovered({2}))  # a first batch
            await asyncio.sleep(0)
            waiting = not batch.done()  # it waits for the recovery under way ...
            rec.release.set()
            await batch
            return rec.started, set(rec.store.recovered), waiting
        finally:
            rec.store.close()

    started, recovered, waiting = asyncio.run(scenario())
    assert sorted(started) == [0, 1, 2, 3]  # all started before any finished, each once
    assert waiting and recovered == {0, 1, 2, 3}


def test_a_rebalance_during_a_recovery_makes_it_read_the_partition_again(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[int], set[int]]:
        rec = _RecordingStore(tmp_path)
        try:
            first = rec.store.recover_soon({1})
            for _ in range(100):  # until the changelog read is under way
                if rec.started:
                    break
                await asyncio.sleep(0)
            rec.store.forget_assignment()  # another worker may write partition 1 meanwhile
            rec.release.set()
            await first
            return rec.started, set(rec.store.recovered)
        finally:
            rec.store.close()

    started, recovered = asyncio.run(scenario())
    assert started == [1, 1] and recovered == {1}  # read again after the rebalance


def test_closing_the_store_stops_a_background_recovery(tmp_path: Path) -> None:
    async def scenario() -> bool:
        rec = _RecordingStore(tmp_path)
        task = rec.store.recover_soon({0})
        for _ in range(100):
            if rec.started:
                break
            await asyncio.sleep(0)
        rec.store.close()  # the worker stops while a changelog read is under way
        await asyncio.gather(task, return_exceptions=True)
        return task.cancelled()

    assert asyncio.run(scenario())
