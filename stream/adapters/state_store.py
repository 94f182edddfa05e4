"""Per-user state behind a small get/set/delete interface.

Three implementations run the same tests: in-memory (unit tests, offline eval), a plain
RocksDB store through rocksdict (tools, benchmarks) and the Faust table (``rocksdb://`` store,
changelog-backed) that workers use so state survives crashes and moves with partitions.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol


class StateStore(Protocol):
    """``partition`` is the user's input partition: a changelog-backed store writes the key's
    changelog record there (plain stores ignore it)."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, partition: int | None = None) -> None: ...

    def delete(self, key: str, partition: int | None = None) -> None: ...

    def keys(self) -> Iterator[str]: ...


class MemoryStore:
    """Dict-backed store: the reference implementation."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def set(self, key: str, value: bytes, partition: int | None = None) -> None:
        self._data[key] = value

    def delete(self, key: str, partition: int | None = None) -> None:
        self._data.pop(key, None)

    def keys(self) -> Iterator[str]:
        return iter(list(self._data))

    def close(self) -> None:
        self._data.clear()


class RocksStore:
    """RocksDB through rocksdict with the WAL on and no fsync per put (DESIGN: 7 µs vs 345 µs)."""

    def __init__(self, path: Path) -> None:
        from rocksdict import AccessType, Options, Rdict

        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        self._db = Rdict(str(path), options=options, access_type=AccessType.read_write())

    def get(self, key: str) -> bytes | None:
        value = self._db.get(key.encode())
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, partition: int | None = None) -> None:
        self._db.put(key.encode(), value)

    def delete(self, key: str, partition: int | None = None) -> None:
        self._db.delete(key.encode())

    def keys(self) -> Iterator[str]:
        for key in self._db.keys():  # noqa: SIM118 (Rdict, not a dict)
            yield bytes(key).decode()  # type: ignore[arg-type]

    def close(self) -> None:
        self._db.close()


class _PartitionEvent:
    """The part of a Faust event a table write reads: ``message.partition`` and ``.topic``."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: SimpleNamespace) -> None:
        self.message = message


class FaustTableStore:
    """A Faust table (raw bytes values), usable outside Faust's stream iteration.

    Faust picks a table write's RocksDB partition and changelog partition from the *current
    event* (a context variable), which inside a ``take_events`` batch is the batch's last event
    — possibly another partition — and outside an agent does not exist at all. Writes here name
    the user's partition explicitly and set a minimal stand-in event for the duration of the
    write; this is the only place that knows about that Faust internal.
    """

    def __init__(self, table: Any, source_topic: str) -> None:
        self.table = table
        #: a co-partitioned input topic: Faust checks its partition count against the changelog's
        self.source_topic = source_topic

    def get(self, key: str) -> bytes | None:
        value = self.table.get(key.encode())
        return None if value is None else bytes(value)

    def _in_partition(self, partition: int | None) -> Any:
        from faust.streams import _current_event

        if partition is None:
            raise ValueError("a Faust table write needs the key's partition")
        event = _PartitionEvent(SimpleNamespace(partition=partition, topic=self.source_topic))
        return event, _current_event.set(weakref.ref(event)), _current_event  # type: ignore[arg-type]

    def set(self, key: str, value: bytes, partition: int | None = None) -> None:
        event, token, var = self._in_partition(partition)
        try:
            self.table[key.encode()] = value
        finally:
            var.reset(token)
            del event

    def delete(self, key: str, partition: int | None = None) -> None:
        event, token, var = self._in_partition(partition)
        try:
            self.table.pop(key.encode(), None)
        finally:
            var.reset(token)
            del event

    def keys(self) -> Iterator[str]:
        return iter([bytes(k).decode() for k in self.table.keys()])  # noqa: SIM118
