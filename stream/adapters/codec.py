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

from stream.adapters.validation import SchemaError, Validators
from stream.domain.events import UserEvent, event_from_message

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

    def __init__(self, validators: Validators, max_bytes: int) -> None:
        self.validators = validators
        self.max_bytes = max_bytes

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

    def decode_user_event(
        self, env: Envelope, is_known_item: Callable[[str], bool]
    ) -> UserEvent | DeadLetter:
        """A user-topic message as a UserEvent; unknown items and mis-keyed messages are dead."""
        obj = self.decode(env)
        if isinstance(obj, DeadLetter):
            return obj
        event = event_from_message(env.topic, obj)
        if env.key is not None and env.key != event.user_id.encode():
            return env.dead(
                "key_mismatch",
                f"key {env.key[:64]!r} != user_id {event.user_id!r}: user events must be keyed "
                "by user_id so a user's state lives in one partition",
            )
        unknown = [i for i in event.item_ids if not is_known_item(i)]
        if unknown:
            return env.dead("unknown_item", f"unknown item_id(s): {', '.join(unknown[:5])}")
        event.source = (env.topic, env.partition, env.offset)
        return event
