"""Bytes on a topic → validated message, or a dead letter saying exactly why not.

Decoding happens once (orjson), validation runs a compiled schema on the decoded object, and
nothing here raises for bad input: errors are data, so the worker keeps running.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from stream.adapters.validation import SchemaError, Validators
from stream.domain.events import UserEvent, event_from_message

#: users whose home partition is remembered before the memo starts again
_HOMES_MAX = 65_536
_TYPE_WORDS = (
    "must be integer",
    "must be string",
    "must be number",
    "must be object",
    "must be array",
    "must be boolean",
    "must be null",
)


@dataclass(slots=True)
class DeadLetter:
    """A message the engine could not use, with its coordinates and the raw bytes (nothing lost)."""

    topic: str
    partition: int
    offset: int
    reason: str
    error: str
    raw: bytes
    key: bytes | None = None
    ts: int | None = None

    def to_message(self) -> dict[str, Any]:
        try:
            raw, encoding = self.raw.decode("utf-8"), "utf8"
        except UnicodeDecodeError:
            raw, encoding = base64.b64encode(self.raw).decode("ascii"), "base64"
        key = None
        if self.key is not None:
            key = self.key.decode("utf-8", errors="replace")
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "error": self.error,
            "raw": raw,
            "raw_encoding": encoding,
            "key": key,
            "ts": self.ts,
        }


@dataclass(slots=True)
class Envelope:
    """Where a message came from: enough to dead-letter it or to skip it on replay."""

    topic: str  # logical topic name (without the deployment prefix)
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    ts: int | None = None

    def dead(self, reason: str, error: str) -> DeadLetter:
        return DeadLetter(
            self.topic,
            self.partition,
            self.offset,
            reason,
            error,
            self.value or b"",
            self.key,
            self.ts,
        )


class Decoder:
    """Decode + validate against `schemas/`; oversize and non-JSON are rejected before parsing."""

    def __init__(
        self, validators: Validators, max_bytes: int, partitions: int | None = None
    ) -> None:
        self.validators = validators
        self.max_bytes = max_bytes
        #: the user-keyed topics' partition count: a user event must sit on its user's home
        #: partition (``home_partition``). None: not checked (tools and benches that make
        #: envelopes of their own)
        self.partitions = partitions
        self._homes: dict[bytes, int] = {}

    def decode(self, env: Envelope) -> dict[str, Any] | DeadLetter:
        raw = env.value
        if raw is None:
            return env.dead("malformed_json", "empty message (null value)")
        if len(raw) > self.max_bytes:
            return env.dead("oversize", f"message is {len(raw)} bytes, limit {self.max_bytes}")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return env.dead("malformed_json", f"not valid JSON: {exc}")
        if not isinstance(obj, dict):
            return env.dead("wrong_type", f"expected a JSON object, got {type(obj).__name__}")
        try:
            self.validators.validate(env.topic, obj)
        except SchemaError as exc:
            text = str(exc)
            reason = "wrong_type" if any(w in text for w in _TYPE_WORDS) else "schema_violation"
            return env.dead(reason, text)
        return obj

    def home_partition(self, user: bytes) -> int:
        """The partition Kafka's default partitioner gives this key (what every Java client,
        aiokafka and kafka-python do), remembered for the users seen recently (~4 µs a hash)."""
        assert self.partitions is not None
        home = self._homes.get(user)
        if home is None:
            if len(self._homes) >= _HOMES_MAX:
                self._homes.clear()
            home = self._homes[user] = (murmur2(user) & 0x7FFFFFFF) % self.partitions
        return home

    def decode_user_event(
        self, env: Envelope, is_known_item: Callable[[str], bool]
    ) -> UserEvent | DeadLetter:
        """A user-topic message as a UserEvent; unknown items and mis-keyed messages are dead."""
        obj = self.decode(env)
        if isinstance(obj, DeadLetter):
            return obj
        event = event_from_message(env.topic, obj)
        user = event.user_id.encode()
        if env.key is not None and env.key != user:
            return env.dead(
                "key_mismatch",
                f"key {env.key[:64]!r} != user_id {event.user_id!r}: user events must be keyed "
                "by user_id so a user's state lives in one partition",
            )
        if self.partitions is not None:
            home = self.home_partition(user)
            if env.partition != home:
                return env.dead(
                    "wrong_partition",
                    f"user_id {event.user_id!r} belongs on partition {home} of "
                    f"{self.partitions} (the default, Java-compatible murmur2 partitioner), not "
                    f"{env.partition}: every producer of user-keyed topics must use it "
                    "(librdkafka clients: partitioner=murmur2_random), or a user's events and "
                    "erasure land where their state is not",
                )
        unknown = [i for i in event.item_ids if not is_known_item(i)]
        if unknown:
            return env.dead("unknown_item", f"unknown item_id(s): {', '.join(unknown[:5])}")
        event.source = (env.topic, env.partition, env.offset)
        return event
