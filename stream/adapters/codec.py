"""Bytes on a topic → validated message, or a dead letter saying exactly why not.

Decoding happens once (orjson), validation runs a compiled schema on the decoded object, and
nothing here raises for bad input: errors are data, so the worker keeps running.
"""

from __future__ import annotations

import base64
import time
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
        self,
        validators: Validators,
        max_bytes: int,
        partitions: int | None = None,
        max_ahead_ms: int | None = None,
    ) -> None:
        self.validators = validators
        self.max_bytes = max_bytes
        #: the user-keyed topics' partition count: a user event must sit on its user's home
        #: partition (``home_partition``). None: not checked (tools and benches that make
        #: envelopes of their own)
        self.partitions = partitions
        self._homes: dict[bytes, int] = {}
        #: how far a user event's ``ts`` may be ahead of when it was sent (``ahead_of``);
        #: None: not checked
        self.max_ahead_ms = max_ahead_ms
        #: the clock plus the limit when last read: an event at or below it is not ahead of
        #: the clock (time only grows), so the clock is read only for events above it
        self._horizon = -1

    def _ahead(self, ts: int, record_ms: int | None, limit: int) -> bool:
        """``ahead_of(ts, record_ms) > limit``, reading the clock only past ``_horizon`` (a
        clock read per event was ~0.6 µs, ~8 % of a decode)."""
        if record_ms is not None and record_ms > 0 and ts - record_ms > limit:
            return True
        if ts <= self._horizon:
            return False
        self._horizon = int(time.time() * 1000) + limit
        return ts > self._horizon

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
        try:
            event = event_from_message(env.topic, obj)
        except (TypeError, ValueError, OverflowError, KeyError) as exc:
            # (a field the schema lets through that the event cannot hold: a dead letter, not
            # an exception that fails the whole batch)
            return env.dead("schema_violation", f"cannot read the event: {exc!r}"[:500])
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
        limit = self.max_ahead_ms
        # (an erasure is never refused for its time: a forget's ts drives no decay)
        if limit is not None and env.topic != "forget" and self._ahead(event.ts, env.ts, limit):
            ahead = ahead_of(event.ts, env.ts)
            return env.dead("ts_ahead", _ahead_error(event.ts, ahead, limit))
        # (a refresh's ts only bounds "now" from below, and carries its stock producer's time)
        checked = limit is not None and env.topic not in ("forget", "refresh")
        if checked and in_seconds(event.ts, env.ts, limit or 0):
            return env.dead("ts_seconds", _seconds_error(event.ts, env.ts or 0))
        unknown = [i for i in event.item_ids if not is_known_item(i)]
        if unknown:
            return env.dead("unknown_item", f"unknown item_id(s): {', '.join(unknown[:5])}")
        event.source = (env.topic, env.partition, env.offset)
        return event


def ahead_of(ts: int, record_ms: int | None) -> int:
    """How many ms an event's ``ts`` is ahead of the earlier of its record's timestamp and now.

    Why it is checked: event time drives every decay. One click dated ahead (a clock set
    wrong, or microseconds sent for milliseconds) stamps its item's features with that time:
    the user's session never decays past it and later events on those features add ~nothing
    (they count as late); the shop's trending rebases to it, every other item's count falls to
    ~0 and stays there, for every user and, through ``learned``, every worker, until the wall
    clock reaches it. The record's timestamp (its producer's or the broker's clock) makes the
    decision the same whenever the record is read; this worker's clock covers records stamped
    with their own event time and envelopes without one."""
    now = int(time.time() * 1000)
    reference = now if record_ms is None or record_ms <= 0 else min(record_ms, now)
    return ts - reference


#: how long before its record a ``ts`` read as seconds may lie and still be taken for seconds
SECONDS_BEHIND_MS = 24 * 3_600_000


def in_seconds(ts: int, record_ms: int | None, ahead_ms: int) -> bool:
    """Is ``ts`` its record's time in *seconds* (a producer sending ``time.time()``)?

    Read as milliseconds such a time lies in January 1970: the event's features are stamped
    decades before the user's other events, so it adds ~nothing to their affinities, and a
    producer sending only seconds runs every horizon 1,000× too long (a 30-minute session is
    three weeks). Nothing else flags it. Judged against the record's timestamp only: ``ts``
    × 1,000 within a day before it (or ``ahead_ms`` after). A threshold on ``ts`` alone would
    also refuse a feed on a relative clock (starting at 0) about 20 days in; this refuses such
    a feed only while its clock, in ms, is within ~90 s of its records' time in seconds."""
    if record_ms is None or record_ms <= 0 or ts <= 0:
        return False
    as_ms = ts * 1000
    return record_ms - SECONDS_BEHIND_MS <= as_ms <= record_ms + ahead_ms


def _seconds_error(ts: int, record_ms: int) -> str:
    return (
        f"ts {ts} reads as {ts / 86_400_000:,.1f} days after 1970, but as seconds it is within "
        f"a day of when it was sent ({record_ms} ms): ts is milliseconds since the epoch "
        "(send ts x 1000)"
    )


def _ahead_error(ts: int, ahead: int, limit: int) -> str:
    hint = " (microseconds? ts is milliseconds since the epoch)" if ts > 10**14 else ""
    return (
        f"ts {ts} is {ahead / 3_600_000:,.1f} h ahead of when it was sent, more than "
        f"RECSTREAM_MAX_EVENT_AHEAD_MS={limit}{hint}: an event from the future would freeze "
        "its user's session and the shop's trending until then"
    )
