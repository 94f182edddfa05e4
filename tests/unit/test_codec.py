"""Decoder: bytes → validated UserEvent or a DeadLetter that says why and loses nothing."""

from __future__ import annotations

import base64

import orjson
import pytest

from stream.adapters.codec import DeadLetter, Decoder, Envelope
from stream.adapters.validation import get_validators
from stream.domain.events import UserEvent

TS = 1_700_000_000_000
KNOWN = {"i-1", "i-2", "i-3"}


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(get_validators(), max_bytes=1024)


def envelope(
    value: bytes | None, topic: str = "clicks", key: bytes | None = b"u-1", offset: int = 41
) -> Envelope:
    return Envelope(topic=topic, partition=3, offset=offset, key=key, value=value, ts=TS + 5)


def click(**overrides: object) -> bytes:
    msg: dict[str, object] = {"event_id": "e-1", "user_id": "u-1", "item_id": "i-1", "ts": TS}
    msg.update(overrides)
    return orjson.dumps({k: v for k, v in msg.items() if v is not None})


def decode(decoder: Decoder, env: Envelope) -> UserEvent | DeadLetter:
    return decoder.decode_user_event(env, KNOWN.__contains__)


def dead(decoder: Decoder, env: Envelope) -> DeadLetter:
    result = decode(decoder, env)
    assert isinstance(result, DeadLetter), result
    get_validators().validate("dead-letters", result.to_message())
    assert (result.topic, result.partition, result.offset) == (env.topic, 3, env.offset)
    assert result.raw == (env.value or b"")
    assert result.key == env.key and result.ts == TS + 5
    return result


def test_valid_click(decoder: Decoder) -> None:
    env = envelope(click(context={"query": "navy chinos", "device": "mobile"}, extra_field=1))
    event = decode(decoder, env)
    assert isinstance(event, UserEvent)
    assert event.source == ("clicks", 3, 41)
    assert (event.topic, event.event_id, event.user_id, event.ts) == ("clicks", "e-1", "u-1", TS)
    assert event.item_ids == ("i-1",) and event.quantities == (1,)
    assert event.query == "navy chinos"


def test_valid_click_without_key(decoder: Decoder) -> None:
    event = decode(decoder, envelope(click(), key=None))
    assert isinstance(event, UserEvent) and event.source == ("clicks", 3, 41)


def test_valid_order_and_cart(decoder: Decoder) -> None:
    order = orjson.dumps(
        {
            "event_id": "o-1",
            "user_id": "u-1",
            "ts": TS,
            "items": [{"item_id": "i-1", "quantity": 2}, {"item_id": "i-3"}],
        }
    )
    event = decode(decoder, envelope(order, topic="orders", offset=7))
    assert isinstance(event, UserEvent)
    assert event.item_ids == ("i-1", "i-3") and event.quantities == (2, 1)
    assert event.source == ("orders", 3, 7)
    cart = orjson.dumps(
        {"event_id": "c-1", "user_id": "u-1", "item_id": "i-2", "ts": TS, "action": "remove"}
    )
    event = decode(decoder, envelope(cart, topic="carts"))
    assert isinstance(event, UserEvent) and event.action == "remove"


def test_valid_search_has_no_items(decoder: Decoder) -> None:
    raw = orjson.dumps(
        {"event_id": "s-1", "user_id": "u-1", "ts": TS, "query": "chinos", "filters": {"size": "M"}}
    )
    event = decode(decoder, envelope(raw, topic="searches"))
    assert isinstance(event, UserEvent)
    assert event.item_ids == () and event.filters == {"size": "M"} and event.query == "chinos"


def test_malformed_json(decoder: Decoder) -> None:
    letter = dead(decoder, envelope(b'{"event_id": "e-1", '))
    assert letter.reason == "malformed_json"
    assert letter.error.startswith("not valid JSON")


def test_null_value_is_malformed(decoder: Decoder) -> None:
    letter = dead(decoder, envelope(None))
    assert letter.reason == "malformed_json"
    assert letter.to_message()["raw"] == ""


def test_json_array_is_wrong_type(decoder: Decoder) -> None:
    letter = dead(decoder, envelope(b'[{"event_id": "e-1"}]'))
    assert letter.reason == "wrong_type"
    assert "list" in letter.error


def test_missing_required_is_schema_violation(decoder: Decoder) -> None:
    letter = dead(decoder, envelope(click(item_id=None)))
    assert letter.reason == "schema_violation"
    assert "item_id" in letter.error


def test_value_out_of_range_is_schema_violation(decoder: Decoder) -> None:
    letter = dead(decoder, envelope(click(ts=-1)))
    assert letter.reason == "schema_violation"
    assert "'ts'" in letter.error


def test_wrong_field_type(decoder: Decoder) -> None:
    letter = dead(decoder, envelope(click(ts="2024-01-01")))
    assert letter.reason == "wrong_type"
    assert "'ts'" in letter.error


def test_oversize(decoder: Decoder) -> None:
    raw = click(context={"query": "x" * 2000})
    assert len(raw) > 1024
    letter = dead(decoder, envelope(raw))
    assert letter.reason == "oversize"
    assert str(len(raw)) in letter.error and "1024" in letter.error


def test_exactly_max_bytes_is_accepted(decoder: Decoder) -> None:
    base = click(context={"query": ""})
    raw = click(context={"query": "x" * (1024 - len(base))})
    assert len(raw) == 1024
    assert isinstance(decode(decoder, envelope(raw)), UserEvent)


def test_unknown_item(decoder: Decoder) -> None:
    letter = dead(decoder, envelope(click(item_id="i-404")))
    assert letter.reason == "unknown_item"
    assert "i-404" in letter.error
    order = orjson.dumps(
        {
            "event_id": "o-1",
            "user_id": "u-1",
            "ts": TS,
            "items": [{"item_id": "i-1"}, {"item_id": "i-999"}],
        }
    )
    letter = dead(decoder, envelope(order, topic="orders"))
    assert letter.reason == "unknown_item"
    assert "i-999" in letter.error and "i-1," not in letter.error


def test_key_mismatch(decoder: Decoder) -> None:
    letter = dead(decoder, envelope(click(), key=b"u-2"))
    assert letter.reason == "key_mismatch"
    assert "u-1" in letter.error


def test_dead_letter_message_utf8(decoder: Decoder) -> None:
    raw = '{"event_id": "é", broken'.encode()
    letter = dead(decoder, envelope(raw))
    msg = letter.to_message()
    assert msg["raw_encoding"] == "utf8"
    assert msg["raw"].encode() == raw
    assert msg["key"] == "u-1"
    assert msg["reason"] == "malformed_json"
    assert (msg["topic"], msg["partition"], msg["offset"], msg["ts"]) == ("clicks", 3, 41, TS + 5)


def test_dead_letter_non_utf8_raw_is_base64(decoder: Decoder) -> None:
    raw = b'\xff\xfe{"event_id": "e-1"}\x80\x00'
    letter = dead(decoder, envelope(raw))
    msg = letter.to_message()
    get_validators().validate("dead-letters", msg)
    assert msg["raw_encoding"] == "base64"
    assert base64.b64decode(msg["raw"], validate=True) == raw


def test_dead_letter_without_key_or_ts_validates() -> None:
    letter = DeadLetter("clicks", 0, 0, "oversize", "too big", bytes(range(256)))
    msg = letter.to_message()
    get_validators().validate("dead-letters", msg)
    assert msg["key"] is None and msg["ts"] is None
    assert base64.b64decode(msg["raw"]) == bytes(range(256))
