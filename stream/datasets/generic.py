"""The generic dataset format: what `replay` and `eval --dataset DIR` read and every adapter writes.

A folder holds ``catalog.jsonl`` and ``events.jsonl``: one message per line, exactly as it goes on
its topic plus a ``"topic"`` field, events in time order. A small ``meta.json`` (counts, source
notes) may sit beside them; readers never need it, but it lets a progress bar know the total
without scanning the file. Readers stream line by line, so a year of events never has to fit in
memory, and a bad line is reported as ``file:line`` so a hand-edited dataset is easy to fix.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from stream.settings import ITEM_TOPICS, USER_TOPICS

#: Topics a dataset may put messages on (the engine's input topics, DESIGN.md).
INPUT_TOPICS: tuple[str, ...] = USER_TOPICS + ITEM_TOPICS
CATALOG_FILE = "catalog.jsonl"
EVENTS_FILE = "events.jsonl"
META_FILE = "meta.json"

Message = dict[str, Any]


class Events:
    """A re-iterable event stream: each ``iter()`` starts over (a file read or a generator).

    Plain generators can be consumed once only; evaluation and replay both want to walk the
    same dataset more than once without holding it in memory, so a factory is kept instead.
    ``count`` is the number of events when known cheaply (else computed on first access).
    """

    def __init__(
        self,
        factory: Callable[[], Iterator[Message]],
        count: int | None = None,
        counter: Callable[[], int] | None = None,
    ) -> None:
        self._factory = factory
        self._count = count
        self._counter = counter

    def __iter__(self) -> Iterator[Message]:
        return self._factory()

    @property
    def count(self) -> int | None:
        """Number of events, or None when it cannot be known without generating them all."""
        if self._count is None and self._counter is not None:
            self._count = self._counter()
        return self._count

    def __len__(self) -> int:
        count = self.count
        if count is None:
            raise TypeError("this event stream has no known length")
        return count

    @classmethod
    def of(cls, events: list[Message]) -> Events:
        """Wrap an in-memory list (small datasets)."""
        return cls(lambda: iter(events), count=len(events))


class Dataset(NamedTuple):
    """Catalog messages (all of them, small) and the time-ordered event stream."""

    catalog: list[Message]
    events: Iterable[Message]


def event_count(events: Iterable[Message]) -> int | None:
    """Length of an event stream when it is known without consuming it (for progress bars)."""
    if isinstance(events, Events):
        return events.count
    if isinstance(events, list | tuple):
        return len(events)
    return None


def without_topic(record: Message) -> Message:
    """The message as it goes on its topic (the record minus its ``topic`` field)."""
    return {k: v for k, v in record.items() if k != "topic"}


def _check_event(record: Any, where: str, last_ts: float | None) -> float:
    """Validate the envelope of one event record; returns its ts. Raises ValueError(where...)."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    topic = record.get("topic")
    if topic not in INPUT_TOPICS:
        raise ValueError(f"{where}: unknown or missing topic {topic!r} (one of {INPUT_TOPICS})")
    ts = record.get("ts")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        raise ValueError(f"{where}: missing or non-numeric ts {ts!r}")
    if last_ts is not None and ts < last_ts:
        raise ValueError(f"{where}: events out of time order (ts {ts} after {last_ts})")
    return ts


def _write_atomic(path: Path, lines: Iterable[bytes]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", buffering=1 << 20) as fh:
        for line in lines:
            fh.write(line)
    os.replace(tmp, path)


def write_dataset(
    directory: str | os.PathLike[str],
    catalog: Iterable[Message],
    events: Iterable[Message],
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``catalog.jsonl`` + ``events.jsonl`` (+ ``meta.json``); returns the meta written.

    Catalog records without a topic get ``"topic": "catalog"``; event records must carry one of
    the input topics and come in time order (checked, so a broken adapter fails here, not in a
    replay hours later). Files are written to a temporary name and renamed when complete.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    dumps = orjson.dumps
    opt = orjson.OPT_APPEND_NEWLINE
    counts: dict[str, int] = {}
    n_catalog = 0

    def catalog_lines() -> Iterator[bytes]:
        nonlocal n_catalog
        for n, record in enumerate(catalog, 1):
            if record.get("topic", "catalog") != "catalog":
                raise ValueError(f"catalog record {n}: topic {record.get('topic')!r} != 'catalog'")
            if "topic" not in record:
                record = {"topic": "catalog", **record}
            n_catalog += 1
            yield dumps(record, option=opt)

    first_ts: float | None = None
    last_ts: float | None = None

    def event_lines() -> Iterator[bytes]:
        nonlocal first_ts, last_ts
        for n, record in enumerate(events, 1):
            last_ts = _check_event(record, f"event {n}", last_ts)
            if first_ts is None:
                first_ts = last_ts
            topic = record["topic"]
            counts[topic] = counts.get(topic, 0) + 1
            yield dumps(record, option=opt)

    _write_atomic(out / CATALOG_FILE, catalog_lines())
    _write_atomic(out / EVENTS_FILE, event_lines())
    written = {
        **(meta or {}),
        "catalog": n_catalog,
        "events": sum(counts.values()),
        "topics": dict(sorted(counts.items())),
        "first_ts": first_ts,
        "last_ts": last_ts,
    }
    (out / META_FILE).write_bytes(orjson.dumps(written, option=orjson.OPT_INDENT_2))
    return written


def _read_lines(path: Path) -> Iterator[tuple[str, Any]]:
    """(``file:line``, parsed JSON) per non-blank line; bad JSON raises ValueError(file:line)."""
    loads = orjson.loads
    with open(path, "rb", buffering=1 << 20) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                yield where, loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{where}: invalid JSON: {exc}") from None


def read_catalog(directory: str | os.PathLike[str]) -> Iterator[Message]:
    """Stream the catalog records of a dataset folder (each still carries ``"topic"``)."""
    for where, record in _read_lines(Path(directory) / CATALOG_FILE):
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        if record.get("topic", "catalog") != "catalog":
            raise ValueError(f"{where}: catalog file holds topic {record.get('topic')!r}")
        if "item_id" not in record:
            raise ValueError(f"{where}: catalog record without item_id")
        record.setdefault("topic", "catalog")
        yield record


def read_events(directory: str | os.PathLike[str]) -> Iterator[Message]:
    """Stream the events of a dataset folder, checking envelope (topic, ts) and time order."""
    last_ts: float | None = None
    for where, record in _read_lines(Path(directory) / EVENTS_FILE):
        last_ts = _check_event(record, where, last_ts)
        yield record


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The folder's ``meta.json`` (empty when absent or unreadable: it is only a convenience)."""
    path = Path(directory) / META_FILE
    try:
        meta = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                n += 1
    return n


def load_dir(directory: str | os.PathLike[str]) -> Dataset:
    """A dataset folder as a Dataset: catalog in memory, events streamed from disk on each pass."""
    path = Path(directory)
    for name in (CATALOG_FILE, EVENTS_FILE):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a dataset folder: {name} is missing")
    meta_count = read_meta(path).get("events")
    count = meta_count if isinstance(meta_count, int) else None
    events = Events(
        lambda: read_events(path), count=count, counter=lambda: _count_lines(path / EVENTS_FILE)
    )
    catalog = list(read_catalog(path))
    if not catalog:  # every method ranks catalog items: without any, nothing can be recommended
        raise ValueError(
            f"{path / CATALOG_FILE} has no item: write one catalog record per item "
            '({"item_id": ..., "ts": ...} at least; see `recstream export`)'
        )
    return Dataset(catalog, events)


def default_cache_dir() -> Path:
    """``$RECSTREAM_DATA_DIR/cache`` (``data/cache`` by default): converted datasets live there."""
    from stream.settings import Settings

    return Settings.from_env().data_dir / "cache"


def cached_dataset(
    key: str,
    build: Callable[[], tuple[list[Message], Iterable[Message], dict[str, Any]]],
    cache: bool | str | os.PathLike[str] = True,
) -> Dataset:
    """Build a dataset once, keep it as a generic folder ``<cache>/<key>``, read it back after.

    ``cache``: True = the default cache dir, a path = that dir, False = build in memory every
    time. The folder is written under a temporary name and renamed, so an interrupted build
    never leaves a half dataset that a later run would trust.
    """
    if cache is False:
        catalog, events, _meta = build()
        return Dataset(catalog, events)
    root = default_cache_dir() if cache is True else Path(cache)
    final = root / key
    if not (final / META_FILE).is_file():
        catalog, events, meta = build()
        tmp = root / f".{key}.{os.getpid()}.tmp"
        try:
            write_dataset(tmp, catalog, events, meta={"key": key, **meta})
            if final.exists():  # a folder without meta.json: stale, from an older crash
                shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except OSError:
            if not (final / META_FILE).is_file():  # not just a concurrent build that won
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_dir(final)
