"""What a batch is made of and what it must do: framework-free records, the plan of effects
``Pipeline`` builds from them, and how state becomes durable (kept apart from the pipeline
so it stays one concept per module)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from stream.domain.engine import Recommendation
from stream.domain.events import UserEvent
from stream.domain.learning import Observation
from stream.domain.profile import UserProfile

#: (logical topic, key, value or None for a tombstone, partition or None) -> delivery future
Send = Callable[[str, bytes, bytes | None, int | None], Awaitable["asyncio.Future[Any]"]]


@dataclass
class Durability:
    """How state becomes durable: its changelog topic (logical), what to do once a partition's
    changelog records are delivered, and how to make sure a partition's state is recovered
    before it is served. Absent (unit tests, tools): the store alone is the state."""

    changelog: str
    delivered: Callable[[int, int], None]
    recover: Callable[[set[int]], Awaitable[None]]
    #: the user partitions this worker is assigned now
    assigned: Callable[[], set[int]]


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed message, framework-free. ``topic`` is logical (no deployment prefix)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


@dataclass
class UserWork:
    """One user's share of a batch, in arrival order."""

    partition: int
    events: list[UserEvent] = field(default_factory=list)
    received_ms: int | None = None  # broker time of the user's newest record in the batch


@dataclass
class BatchPlan:
    """What a batch must do to the outside world, in the order ``commit`` does it."""

    outputs: list[tuple[str, bytes, bytes | None]] = field(default_factory=list)
    writes: list[tuple[str, int, bytes | None]] = field(default_factory=list)  # None = delete
    lists: list[tuple[UserProfile, Recommendation, int | None]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
