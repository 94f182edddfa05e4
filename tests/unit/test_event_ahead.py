"""A user event dated ahead of when it was sent is dead-lettered (``ts_ahead``): event time
drives every decay, and one click from the future froze its user's session and the shop's
trending until the wall clock reached it (see ``stream.adapters.codec.ahead_of``)."""

from __future__ import annotations

import time

import orjson
import pytest

from stream.adapters.codec import DeadLetter, Decoder, Envelope, ahead_of
from stream.adapters.validation import get_validators
from stream.domain.events import UserEvent
from stream.settings import Settings

HOUR = 3_600_000


def _now() -> int:
    return int(time.time() * 1000)


def _decode(ts: int, record_ms: int | None, limit: int | None = HOUR) -> UserEvent | DeadLetter:
    body = {"event_id": "e-1", "user_id": "u-1", "item_id": "i-1", "ts": ts}
    env = Envelope("clicks", 0, 3, b"u-1", orjson.dumps(body), record_ms)
    return Decoder(get_validators(), 1024, None, limit).decode_user_event(env, {"i-1"}.__contains__)


def test_microseconds_for_milliseconds_are_dead_lettered_with_the_hint() -> None:
    now = _now()
    dead = _decode(now * 1000, now)
    assert isinstance(dead, DeadLetter) and dead.reason == "ts_ahead"
    assert "microseconds?" in dead.error and "RECSTREAM_MAX_EVENT_AHEAD_MS=3600000" in dead.error
    assert dead.raw and dead.key == b"u-1" and dead.offset == 3  # nothing lost


def test_ahead_of_its_record_by_more_than_the_limit_is_dead_even_when_read_later() -> None:
    sent = _now() - 30 * 24 * HOUR  # a month-old record, read from a backlog today
    dead = _decode(sent + 2 * HOUR, sent)  # its ts was 2 h ahead when sent: a wrong clock
    assert isinstance(dead, DeadLetter) and dead.reason == "ts_ahead"
    assert "2.0 h ahead" in dead.error and "microseconds" not in dead.error
    assert isinstance(_decode(sent + HOUR // 2, sent), UserEvent)  # within the hour: kept


def test_the_workers_clock_judges_records_stamped_with_their_own_event_time() -> None:
    far = _now() + 5 * HOUR
    assert isinstance(_decode(far, far), DeadLetter)  # record time = event time: the clock
    assert isinstance(_decode(far, None), DeadLetter)  # no record time (tools' envelopes)
    assert isinstance(_decode(far, -1), DeadLetter)  # "no timestamp" on the wire
    assert isinstance(_decode(_now() + HOUR // 2, None), UserEvent)


def test_events_from_the_past_pass_whatever_their_age() -> None:
    now = _now()
    for ts in (0, 1_000, 1_500_000_000_000, now - 1, now):  # replays of old data are fine
        assert isinstance(_decode(ts, now), UserEvent), ts


def test_the_clock_moves_on_for_a_decoder_that_keeps_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An event ahead of the clock is refused; once the clock has come within the limit of it,
    the same event passes (the decoder's remembered horizon is only a lower bound)."""
    clock = [1_800_000_000.0]  # seconds, as time.time
    monkeypatch.setattr("stream.adapters.codec.time.time", lambda: clock[0])
    decoder = Decoder(get_validators(), 1024, None, HOUR)
    body = {"event_id": "e-1", "user_id": "u-1", "item_id": "i-1", "ts": 0}

    def decode(ts: int) -> UserEvent | DeadLetter:
        env = Envelope("clicks", 0, 3, b"u-1", orjson.dumps(body | {"ts": ts}), None)
        return decoder.decode_user_event(env, {"i-1"}.__contains__)

    start = int(clock[0] * 1000)
    assert isinstance(decode(start - 5), UserEvent)
    assert isinstance(decode(start + 2 * HOUR), DeadLetter)
    assert isinstance(decode(start + HOUR // 2), UserEvent)
    clock[0] += 1.5 * 3600
    assert isinstance(decode(start + 2 * HOUR), UserEvent)
    assert isinstance(decode(start + 3 * HOUR), DeadLetter)


def test_an_erasure_is_never_refused_for_its_time() -> None:
    now = _now()
    body = {"event_id": "f-1", "user_id": "u-1", "ts": now * 1000}
    env = Envelope("forget", 0, 4, b"u-1", orjson.dumps(body), now)
    got = Decoder(get_validators(), 1024, None, HOUR).decode_user_event(env, bool)
    assert isinstance(got, UserEvent) and got.topic == "forget"


def test_no_limit_checks_nothing() -> None:
    assert isinstance(_decode(_now() * 1000, _now(), limit=None), UserEvent)


@pytest.mark.parametrize(("record_ms", "expected"), [(1_000, 500), (None, None)])
def test_ahead_of_reads_the_earlier_of_record_time_and_now(
    record_ms: int | None, expected: int | None
) -> None:
    got = ahead_of(1_500, record_ms)
    if expected is None:
        assert got < 0  # now is far past ts 1,500
    else:
        assert got == expected


def test_the_setting_defaults_to_an_hour_and_zero_turns_it_off() -> None:
    assert Settings.from_env({}).max_event_ahead_ms == HOUR
    assert Settings.from_env({"RECSTREAM_MAX_EVENT_AHEAD_MS": "0"}).max_event_ahead_ms == 0
    with pytest.raises(ValueError, match="RECSTREAM_MAX_EVENT_AHEAD_MS must be >= 0"):
        Settings.from_env({"RECSTREAM_MAX_EVENT_AHEAD_MS": "-5"})


def test_seconds_for_milliseconds_are_dead_lettered_with_the_fix() -> None:
    """A producer sending ``time.time()`` (seconds): read as ms, January 1970."""
    now = _now()
    dead = _decode(now // 1000, now)
    assert isinstance(dead, DeadLetter) and dead.reason == "ts_seconds"
    assert f"reads as {now / 1000 / 86_400_000:,.1f} days after 1970" in dead.error
    assert "milliseconds since the epoch" in dead.error and dead.raw  # nothing lost
    assert isinstance(_decode((now - 20 * HOUR) // 1000, now), DeadLetter)  # sent a day late
    assert isinstance(_decode(now // 1000, None), UserEvent)  # no record time: not judged


@pytest.mark.parametrize(
    ("relative", "offset"),
    [
        (False, 0),  # the epoch itself
        (False, 1_000),
        (False, 19 * 24 * HOUR),  # a relative clock (a synthetic feed starting at 0), 19 days in
        (True, -100_000),  # such a clock 100 s before its ms equal the records' seconds
        (True, 10_000),  # and 10 s after
        (True, -36 * HOUR // 1000),  # seconds, but sent a day and a half late
    ],
)
def test_times_that_only_look_small_pass(relative: bool, offset: int) -> None:
    """Judged against the record, a relative clock passes but for ~90 s around the point where
    its ms equal the records' seconds (~20.8 days in, in Dec 2026). (Values near the clock are
    computed here, not at collection: pytest-xdist's workers must collect the same ids.)"""
    now = _now()
    ts = now // 1000 + offset if relative else offset
    assert isinstance(_decode(ts, now), UserEvent)


def test_refreshes_and_erasures_are_not_judged_for_seconds() -> None:
    now = _now()
    for topic in ("refresh", "forget"):
        body = {"event_id": "e-1", "user_id": "u-1", "ts": now // 1000}
        if topic == "refresh":
            body["item_id"] = "i-1"
        env = Envelope(topic, 0, 3, b"u-1", orjson.dumps(body), now)
        decoded = Decoder(get_validators(), 1024, None, HOUR).decode_user_event(
            env, {"i-1"}.__contains__
        )
        assert isinstance(decoded, UserEvent), topic


def test_switched_off_with_the_ahead_check() -> None:
    now = _now()
    assert isinstance(_decode(now // 1000, now, limit=None), UserEvent)
