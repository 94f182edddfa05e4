"""Replay a dataset's messages onto Kafka topics, as fast as possible or paced.

Pacing follows event time (``speed``: 3600 = one hour of ``ts`` per wall second) and/or a
message-rate cap (``rate``), whichever is slower. Sends are pipelined: ``producer.send`` returns
a delivery future and those are awaited in chunks, never one round trip per message, so the
producer's batching (``linger_ms``, ``max_batch_size``) does the work. Ctrl-C / cancellation
stops cleanly: what was handed to the producer is flushed and partial counts are returned with
``interrupted=True``, so a long replay can be stopped and its progress still reported.

Records keep producer (wall-clock) timestamps, not event time: a real Kafka topic with time-based
retention would delete 2017 records at once. Event time travels in the message's ``ts``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.settings import ITEM_TOPICS, USER_TOPICS

#: Message field used as the record key, per topic (user topics are co-partitioned by user).
KEY_FIELD: dict[str, str] = {
    **{topic: "user_id" for topic in USER_TOPICS},
    **{topic: "item_id" for topic in ITEM_TOPICS},
}
#: Producer defaults tuned for bulk replay; ``producer_kwargs`` overrides any of them.
DEFAULT_PRODUCER_KWARGS: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 256 * 1024}
_WINDOW = 8192  # delivery futures allowed in flight before the oldest are awaited
_CHUNK = 1024  # how many of the oldest are awaited at once
_SETTLE_BEFORE_SLEEP_S = 0.05  # pacing sleeps longer than this settle acks first


@dataclass
class ReplayStats:
    """What a replay delivered, per (unprefixed) topic."""

    sent: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    interrupted: bool = False
    first_ts: int | None = None
    last_ts: int | None = None
    last_error: str | None = None

    @property
    def total(self) -> int:
        """Messages acknowledged by the broker."""
        return sum(self.sent.values())

    @property
    def rate(self) -> float:
        """Acknowledged messages per wall-clock second."""
        return self.total / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        """One line for the CLI."""
        topics = ", ".join(f"{t}={n}" for t, n in sorted(self.sent.items())) or "nothing"
        text = f"sent {self.total} ({topics}) in {self.elapsed_s:.1f}s, {self.rate:,.0f} msg/s"
        if self.failed:
            text += f"; failed {sum(self.failed.values())} ({self.last_error})"
        if self.interrupted:
            text += "; interrupted"
        return text


class _Pacer:
    """Wall-clock deadline for the next message from event time and/or a rate cap."""

    def __init__(self, speed: float | None, rate: float | None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.speed, self.rate = speed, rate
        self.start = time.monotonic()
        self.ts0: float | None = None

    def delay(self, n: int, ts: Any) -> float:
        """Seconds to wait before sending message number ``n`` (0-based) with event time ``ts``."""
        target = self.start
        if self.speed is not None and isinstance(ts, int | float):
            if self.ts0 is None:
                self.ts0 = ts
            target = max(target, self.start + (ts - self.ts0) / 1000.0 / self.speed)
        if self.rate is not None:
            target = max(target, self.start + n / self.rate)
        return target - time.monotonic()


def _oldest(
    pending: deque[tuple[str, asyncio.Future[Any]]], n: int
) -> list[tuple[str, asyncio.Future[Any]]]:
    """Pop the ``n`` oldest (topic, future) pairs, for awaiting."""
    return [pending.popleft() for _ in range(min(n, len(pending)))]


async def _await_chunk(chunk: list[tuple[str, asyncio.Future[Any]]], stats: ReplayStats) -> None:
    results = await asyncio.gather(*(fut for _, fut in chunk), return_exceptions=True)
    for (topic, _), result in zip(chunk, results, strict=True):
        if isinstance(result, BaseException):
            stats.failed[topic] = stats.failed.get(topic, 0) + 1
            stats.last_error = f"{type(result).__name__}: {result}"
        else:
            stats.sent[topic] = stats.sent.get(topic, 0) + 1


def _encode(record: dict[str, Any], n: int) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of one dataset record; ValueError names the record when it is bad."""
    topic = record.get("topic")
    key_field = KEY_FIELD.get(topic) if isinstance(topic, str) else None
    if key_field is None or not isinstance(topic, str):
        raise ValueError(f"record {n}: unknown topic {topic!r} (one of {sorted(KEY_FIELD)})")
    key = record.get(key_field)
    if key is None:
        raise ValueError(f"record {n}: {topic} message without {key_field}")
    value = orjson.dumps({k: v for k, v in record.items() if k != "topic"})
    return topic, str(key).encode(), value


async def replay(
    events: Iterable[dict[str, Any]],
    *,
    bootstrap: str,
    topic_prefix: str = "",
    speed: float | None = None,
    rate: float | None = None,
    security_kwargs: dict[str, Any] | None = None,
    producer_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    total: int | None = None,
) -> ReplayStats:
    """Produce every record (a message plus its ``topic``) to ``topic_prefix + topic``.

    Key: ``user_id`` on user topics, ``item_id`` on stock/catalog; value: the message without
    ``topic`` as JSON. Topics are not created here (the caller owns partition counts).
    Returns per-topic acknowledged counts; on cancellation / Ctrl-C, flushes and returns the
    partial counts with ``interrupted=True``. Delivery errors are counted, not raised.
    """
    from aiokafka import AIOKafkaProducer
    from tqdm import tqdm

    from stream.datasets.generic import event_count

    pacer = _Pacer(speed, rate)
    stats = ReplayStats()
    kwargs = {**DEFAULT_PRODUCER_KWARGS, **(security_kwargs or {}), **(producer_kwargs or {})}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kwargs)
    try:
        await producer.start()
    except BaseException:  # a stop during start: no half-started client left behind
        await producer.stop()
        raise
    started = time.monotonic()
    pending: deque[tuple[str, asyncio.Future[Any]]] = deque()
    bar = tqdm(
        total=total if total is not None else event_count(events),
        unit="msg",
        file=sys.stderr,
        disable=not progress,
        mininterval=0.5,
        dynamic_ncols=True,
    )
    unreported = 0
    try:
        for n, record in enumerate(events):
            topic, key, value = _encode(record, n)
            ts = record.get("ts")
            wait = pacer.delay(n, ts)
            if wait > 0.001:
                if wait > _SETTLE_BEFORE_SLEEP_S and pending:
                    await _await_chunk(_oldest(pending, len(pending)), stats)
                    wait = pacer.delay(n, ts)
                if wait > 0:
                    await asyncio.sleep(wait)
            fut = await producer.send(topic_prefix + topic, value=value, key=key)
            pending.append((topic, fut))
            if isinstance(ts, int):
                if stats.first_ts is None:
                    stats.first_ts = ts
                stats.last_ts = ts
            if len(pending) > _WINDOW:
                await _await_chunk(_oldest(pending, _CHUNK), stats)
            unreported += 1
            if unreported >= 256:
                bar.update(unreported)
                unreported = 0
        await producer.flush()
        await _await_chunk(_oldest(pending, len(pending)), stats)
    except (asyncio.CancelledError, KeyboardInterrupt):
        # Deliberately swallowed: the caller asked for partial stats, not an exception.
        stats.interrupted = True
        await producer.flush()
        await _await_chunk(_oldest(pending, len(pending)), stats)
    finally:
        bar.update(unreported)
        bar.close()
        stats.elapsed_s = time.monotonic() - started
        await producer.stop()
    return stats
