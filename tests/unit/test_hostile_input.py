"""Hostile input (issue 6): whatever bytes arrive, decoding returns an event or a dead letter with
a reason — never an exception — and a valid but absurd event never breaks the engine."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.adapters.codec import DeadLetter, Decoder, Envelope
from stream.adapters.validation import get_validators, load_schema
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.settings import CONTROL_TOPICS, USER_TOPICS

REASONS = {
    "malformed_json",
    "schema_violation",
    "wrong_type",
    "unknown_item",
    "oversize",
    "key_mismatch",
}
TOPICS = USER_TOPICS + CONTROL_TOPICS
DECODER = Decoder(get_validators(), 64 * 1024)
KNOWN = {"i-1", "i-2", "i-3"}.__contains__


def decode(topic: str, raw: bytes | None, key: bytes | None = b"u-1") -> UserEvent | DeadLetter:
    return DECODER.decode_user_event(Envelope(topic, 0, 7, key, raw, 1), KNOWN)


def check(result: UserEvent | DeadLetter) -> None:
    if isinstance(result, DeadLetter):
        assert result.reason in REASONS, result
        assert result.error
        json.dumps(result.to_message())  # always serialisable, raw bytes included
    else:
        assert isinstance(result, UserEvent) and result.user_id


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(TOPICS), raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(topic: str, raw: bytes) -> None:
    check(decode(topic, raw))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(TOPICS), value=json_values)
def test_arbitrary_json_never_raises(topic: str, value: Any) -> None:
    check(decode(topic, json.dumps(value).encode()))  # json: integers beyond 64 bits too


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(TOPICS), field=st.text(max_size=12), value=json_values)
def test_mutated_examples_are_events_or_dead_letters(topic: str, field: str, value: Any) -> None:
    """Start from each schema's valid example and overwrite one field with anything."""
    example = dict(load_schema(topic)["examples"][0])
    name = field if field and field[0].isalpha() else sorted(example)[len(field) % len(example)]
    example[name] = value
    key = str(example.get("user_id", "u-1")).encode()
    check(decode(topic, json.dumps(example).encode(), key))


def _example(topic: str, **changes: Any) -> bytes:
    body = dict(load_schema(topic)["examples"][0])
    body.update(changes)
    return orjson.dumps(body)


NASTY: list[tuple[str, bytes | None, str]] = [
    ("clicks", b"\xff\xfe\xfa not utf-8", "malformed_json"),
    ("clicks", b"[" * 10_000 + b"]" * 10_000, "malformed_json"),  # deeper than orjson allows
    ("clicks", b'{"a": ' + b"1" * (10 * 1024 * 1024) + b"}", "oversize"),  # a 10 MB value
    (
        "dwell",
        b'{"event_id":"e","user_id":"u-1","item_id":"i-1","ts":1,"dwell_ms":NaN}',
        "malformed_json",
    ),
    (
        "dwell",
        b'{"event_id":"e","user_id":"u-1","item_id":"i-1","ts":1,"dwell_ms":Infinity}',
        "malformed_json",
    ),
    ("dwell", _example("dwell", user_id="u-1", item_id="i-1", dwell_ms=-5), "schema_violation"),
    ("clicks", _example("clicks", user_id="u-1", item_id="i-1", ts=-1), "schema_violation"),
    ("clicks", _example("clicks", user_id="u-1", item_id="nope"), "unknown_item"),
    ("clicks", _example("clicks", user_id="someone-else", item_id="i-1"), "key_mismatch"),
    ("orders", _example("orders", user_id="u-1", items=[]), "schema_violation"),
    ("forget", b'{"user_id": "u-1"}', "schema_violation"),  # a malformed control message
    ("refresh", b'{"event_id": 3, "user_id": "u-1", "ts": 1, "item_id": "i-1"}', "wrong_type"),
    ("clicks", None, "malformed_json"),  # a null value (tombstone) on an input topic
    ("clicks", b"42", "wrong_type"),
]


@pytest.mark.parametrize(
    ("topic", "field", "value"),
    [
        ("clicks", "quantity", [None]),  # (found by the mutation test above)
        ("clicks", "quantity", "three"),
        ("returns", "quantity", {"n": 1}),
        ("clicks", "dwell_ms", "long"),
        ("carts", "dwell_ms", [1]),
    ],
)
def test_a_field_another_topic_types_is_ignored_where_the_schema_lets_anything_through(
    topic: str, field: str, value: Any
) -> None:
    body = dict(load_schema(topic)["examples"][0]) | {"user_id": "u-1", "item_id": "i-1"}
    result = decode(topic, orjson.dumps(body | {field: value}))
    assert isinstance(result, UserEvent), result
    assert result.quantities == decode(topic, orjson.dumps(body)).quantities  # type: ignore[union-attr]
    assert result.dwell_ms == 0


def test_an_event_the_decoder_cannot_read_is_a_dead_letter_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever else a schema lets through that an event cannot hold becomes a dead letter
    (an exception would fail the worker's whole batch)."""
    from stream.adapters import codec

    def unreadable(topic: str, msg: Any) -> UserEvent:
        raise ValueError("no such thing")

    monkeypatch.setattr(codec, "event_from_message", unreadable)
    result = decode("clicks", _example("clicks", user_id="u-1", item_id="i-1"))
    assert isinstance(result, DeadLetter) and result.reason == "schema_violation"
    assert "no such thing" in result.error


@pytest.mark.parametrize(("topic", "raw", "reason"), NASTY)
def test_nasty_corpus_is_dead_lettered_with_its_reason(
    topic: str, raw: bytes | None, reason: str
) -> None:
    result = decode(topic, raw)
    assert isinstance(result, DeadLetter), result
    assert result.reason == reason, result.error


def test_absurd_but_valid_events_keep_the_engine_finite() -> None:
    """Huge dwell, timestamps far in the past and future, repeats and unknown users."""
    catalog = Catalog()
    for i in range(1, 4):
        catalog.upsert({"item_id": f"i-{i}", "ts": 0, "attributes": {"category": [f"c{i}"]}})
    engine = Engine(catalog=catalog)
    far_future, far_past = 32_503_680_000_000, 1
    events = [
        UserEvent("dwell", "e1", "u-9", far_future, ("i-1",), (1,), dwell_ms=2**62),
        UserEvent("clicks", "e2", "u-9", far_past, ("i-2",), (1,)),
        UserEvent("clicks", "e2", "u-9", far_past, ("i-2",), (1,)),  # duplicate event id
        UserEvent("orders", "e3", "u-9", far_future, ("i-3",), (10**9,)),
        UserEvent("returns", "e4", "u-9", far_past, ("i-3",), (1,)),
    ]
    result = engine.step(None, "u-9", events)
    assert result.applied == len(events) - 1  # the second "e2" is a producer duplicate
    assert result.skipped == [("clicks", "duplicate")]
    for rec in result.recommendations:
        assert all(math.isfinite(item.score) for item in rec.items)
    weights = [w for w, _ in result.state.long_term.values()]
    assert all(math.isfinite(w) for w in weights)
