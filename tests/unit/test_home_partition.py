"""A user event must sit on its user's home partition (Kafka's default partitioner): one written
by another partitioner (librdkafka's default, CRC32) is dead-lettered with the fix, since the
user's state, and an erasure sent by `recstream forget`, live on the home partition."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from stream.adapters.codec import DeadLetter, Decoder, Envelope
from stream.adapters.validation import get_validators
from stream.domain.events import UserEvent

#: Java's ``Utils.murmur2`` of these keys (Kafka's own test vectors, as signed ints)
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _decoder(partitions: int | None = 4) -> Decoder:
    return Decoder(get_validators(), 1024, partitions)


def _click(user: str, partition: int, key: bytes | None) -> Envelope:
    body = {"event_id": "e-1", "user_id": user, "item_id": "i-1", "ts": 1_700_000_000_000}
    return Envelope("clicks", partition, 7, key, orjson.dumps(body))


def _decode(decoder: Decoder, env: Envelope) -> UserEvent | DeadLetter:
    return decoder.decode_user_event(env, {"i-1"}.__contains__)


@pytest.mark.parametrize("partitions", [1, 3, 4, 12, 32])
def test_home_partition_is_javas(partitions: int) -> None:
    decoder = _decoder(partitions)
    for key, hashed in JAVA_MURMUR2.items():  # Java: toPositive(murmur2(key)) % n
        assert decoder.home_partition(key) == (hashed & 0x7FFFFFFF) % partitions
    default = DefaultPartitioner()  # and what aiokafka's producers do, for many users
    every = list(range(partitions))
    for n in range(500):
        user = f"user-{n}".encode()
        assert decoder.home_partition(user) == default(user, every, every)


def test_an_event_on_its_home_partition_is_taken() -> None:
    decoder = _decoder()
    home = decoder.home_partition(b"u-7")
    assert isinstance(_decode(decoder, _click("u-7", home, b"u-7")), UserEvent)


@pytest.mark.parametrize("key", [b"u-7", None])
def test_an_event_elsewhere_is_dead_lettered_with_the_fix(key: bytes | None) -> None:
    decoder = _decoder()
    home = decoder.home_partition(b"u-7")
    letter = _decode(decoder, _click("u-7", (home + 1) % 4, key))  # keyed, or no key at all
    assert isinstance(letter, DeadLetter) and letter.reason == "wrong_partition"
    assert f"belongs on partition {home} of 4" in letter.error
    assert "murmur2_random" in letter.error


def test_without_a_partition_count_nothing_is_checked() -> None:
    decoder = _decoder(None)  # tools and benches: envelopes of their own making
    assert isinstance(_decode(decoder, _click("u-7", 3, b"u-7")), UserEvent)
    assert isinstance(_decode(decoder, _click("u-8", 0, b"u-8")), UserEvent)


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream.adapters import codec

    monkeypatch.setattr(codec, "_HOMES_MAX", 10)
    decoder = _decoder()
    for n in range(35):
        decoder.home_partition(b"u-%d" % n)
        assert len(decoder._homes) <= 10
