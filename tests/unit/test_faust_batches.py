"""BatchFeeder: batches that follow the backlog, acks only after the handler, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from stream.adapters.faust_batches import (
    BACKLOG_MIN,
    BatchFeeder,
    ConsumerLag,
    fill_left,
    gap_ends_batch,
)


class FakeStream:
    """What the feeder uses of a Faust stream: ``noack()``, ``events()``, ``ack()``.

    Events are released by the test through ``push``; ``events()`` ends at ``close``."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()
        self.acked: list[int] = []
        self.noack_called = False

    def noack(self) -> FakeStream:
        self.noack_called = True
        return self

    def push(self, *events: int) -> None:
        for e in events:
            self.queue.put_nowait(e)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def events(self) -> AsyncIterator[int]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event

    async def ack(self, event: int) -> bool:
        self.acked.append(event)
        return True


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_events_pulled_while_a_batch_is_handled_form_the_next_batch() -> None:
    async def scenario() -> tuple[list[list[int]], list[tuple[int, list[int]]], FakeStream]:
        stream = FakeStream()
        release = asyncio.Event()
        batches: list[list[int]] = []
        acked_at_start: list[tuple[int, list[int]]] = []

        async def handler(batch: Sequence[Any]) -> None:
            batches.append(list(batch))
            acked_at_start.append((len(batches), list(stream.acked)))
            if len(batches) == 1:
                await release.wait()  # a slow first batch: a backlog builds meanwhile

        feeder = BatchFeeder(handler, batch_max=4)
        task = asyncio.create_task(feeder.run(stream))
        stream.push(1)
        await _settle()
        stream.push(2, 3, 4, 5, 6, 7)
        await _settle()
        release.set()
        await _settle()
        stream.close()
        await task
        return batches, acked_at_start, stream

    batches, acked_at_start, stream = asyncio.run(scenario())
    assert stream.noack_called
    # no window at low load: the first event is a batch of its own at once; the backlog that
    # built up meanwhile is taken as large batches, never larger than batch_max
    assert batches == [[1], [2, 3, 4, 5], [6, 7]]
    assert stream.acked == [1, 2, 3, 4, 5, 6, 7]
    # a batch's events are acked only after its handler returned
    assert acked_at_start == [(1, []), (2, [1]), (3, [1, 2, 3, 4, 5])]


def test_a_full_buffer_stops_reading_the_stream() -> None:
    async def scenario() -> tuple[int, int]:
        stream = FakeStream()
        release = asyncio.Event()

        async def handler(batch: Sequence[Any]) -> None:
            await release.wait()

        feeder = BatchFeeder(handler, batch_max=3)
        task = asyncio.create_task(feeder.run(stream))
        stream.push(*range(10))
        await _settle()
        left = stream.queue.qsize()  # 3 in the handler, 3 buffered: the rest stays in the stream
        release.set()
        await _settle()
        stream.close()
        await task
        return left, len(stream.acked)

    left, acked = asyncio.run(scenario())
    assert left == 10 - 3 - 3
    assert acked == 10


def test_a_batch_waits_while_events_keep_coming_but_not_past_within() -> None:
    async def scenario(within_s: float) -> list[list[int]]:
        stream = FakeStream()
        batches: list[list[int]] = []

        async def handler(batch: Sequence[Any]) -> None:
            batches.append(list(batch))

        # gap 0.5 s: events every ~5 ms never leave such a gap, even when a loaded machine
        # stretches a 5 ms sleep to 30-50 ms (a 20 ms gap here failed under load)
        feeder = BatchFeeder(handler, batch_max=10, within_s=within_s, gap_s=0.5)
        task = asyncio.create_task(feeder.run(stream))
        for event in range(1, 7):  # one event every >= 5 ms
            stream.push(event)
            await asyncio.sleep(0.005)
        for _ in range(400):  # until every event is handed over (the fill ends on a 0.5 s gap)
            if sum(len(b) for b in batches) == 6:
                break
            await asyncio.sleep(0.02)
        stream.close()
        await task
        return batches

    assert asyncio.run(scenario(within_s=5.0)) == [[1, 2, 3, 4, 5, 6]]
    capped = asyncio.run(scenario(within_s=0.012))
    # the six pushes take >= 25 ms, so a batch bounded to 12 ms cannot hold them all
    assert capped[0][0] == 1 and len(capped[0]) < 6  # the first batch left at its deadline
    assert [e for batch in capped for e in batch] == [1, 2, 3, 4, 5, 6]


def test_a_failing_handler_fails_the_agent_and_acks_nothing() -> None:
    async def scenario() -> FakeStream:
        stream = FakeStream()

        async def handler(batch: Sequence[Any]) -> None:
            raise RuntimeError("delivery failed")

        task = asyncio.create_task(BatchFeeder(handler, batch_max=2).run(stream))
        stream.push(1)
        await _settle()
        stream.push(2)
        with pytest.raises(RuntimeError, match="delivery failed"):
            await asyncio.wait_for(task, 2)
        return stream

    assert asyncio.run(scenario()).acked == []


def test_batch_max_must_be_positive() -> None:
    async def handler(batch: Sequence[Any]) -> None:
        return None

    with pytest.raises(ValueError):
        BatchFeeder(handler, batch_max=0)


class _Message:
    def __init__(self, offset: int) -> None:
        self.tp = ("clicks", 0)
        self.offset = offset


class _Event:
    """A Faust-like event: what ``ConsumerLag`` reads (``message.tp``, ``message.offset``)."""

    def __init__(self, offset: int) -> None:
        self.message = _Message(offset)


def test_consumer_lag_counts_fetched_records_beyond_the_last_handed_over() -> None:
    highwater: dict[Any, int | None] = {("clicks", 0): 10}
    lag = ConsumerLag(lambda tp: highwater[tp])
    assert lag() == 0  # nothing seen yet: no claim
    lag.saw(_Event(3))
    assert lag() == 6  # offsets 4..9
    lag.saw(_Event(9))
    assert lag() == 0
    highwater[("clicks", 0)] = None  # unknown: no claim
    assert lag() == 0
    del highwater[("clicks", 0)]  # unassigned (the lookup fails): no claim
    assert lag() == 0


def _batches_with_lag(behind: bool, pause_s: float, held: int = 100) -> list[list[int]]:
    """Events 0-2, a pause, events 3-5; ``behind``: the consumer holds ``held`` more records."""

    async def scenario() -> list[list[int]]:
        stream = FakeStream()
        batches: list[list[int]] = []

        async def handler(batch: Sequence[Any]) -> None:
            batches.append([e.message.offset for e in batch])

        lag = ConsumerLag(lambda tp: held if behind else None)
        feeder = BatchFeeder(
            handler, batch_max=50, within_s=0.05, gap_s=0.002, lag=lag, backlog_within_s=1.0
        )
        task = asyncio.create_task(feeder.run(stream))
        stream.push(*(_Event(i) for i in range(3)))  # type: ignore[arg-type]
        await asyncio.sleep(pause_s)
        stream.push(*(_Event(i) for i in range(3, 6)))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        stream.close()
        await task
        return batches

    return asyncio.run(scenario())


def test_under_a_backlog_a_fetch_gap_does_not_end_the_batch() -> None:
    # a 20 ms pause (a fetch round trip): without a backlog the 2 ms gap ends the batch
    assert _batches_with_lag(behind=False, pause_s=0.02) == [[0, 1, 2], [3, 4, 5]]
    assert _batches_with_lag(behind=True, pause_s=0.02) == [[0, 1, 2, 3, 4, 5]]


def test_a_claimed_backlog_that_never_arrives_costs_a_batch_at_most_within() -> None:
    # offsets without records (markers) look like a backlog: the batch still leaves after
    # within_s (50 ms) without arrivals, long before backlog_within_s (1 s)
    assert _batches_with_lag(behind=True, pause_s=0.2) == [[0, 1, 2], [3, 4, 5]]


def test_a_fetch_worth_of_records_is_not_a_backlog() -> None:
    # at a steady rate the consumer always holds a few fetched records Faust has not handed
    # over yet; that is no reason to hold a batch back: the gap ends it as without a backlog
    # (a backlog is >= 16 records; offset 2 seen, high-water 8: 5 held)
    assert _batches_with_lag(behind=True, pause_s=0.02, held=8) == [[0, 1, 2], [3, 4, 5]]


def _feeder_with_lag(held: int, batch_max: int = 256, backlog_min: int = BACKLOG_MIN) -> bool:
    async def handler(batch: Sequence[Any]) -> None:
        return None

    lag = ConsumerLag(lambda tp: held)
    lag.saw(_Event(-1))  # last handed over: offset -1, so ``held`` records are behind it
    feeder = BatchFeeder(handler, batch_max, 0.02, 0.001, lag, backlog_min=backlog_min)
    return feeder.behind()


def test_a_backlog_is_more_than_a_fetch_worth_held_by_the_consumer() -> None:
    assert not _feeder_with_lag(held=0)
    assert not _feeder_with_lag(held=15)  # a backlog is >= 16 records (BACKLOG_MIN)
    assert _feeder_with_lag(held=16)
    assert _feeder_with_lag(held=3000)
    assert _feeder_with_lag(held=5, backlog_min=5)  # explicit threshold
    assert not _feeder_with_lag(held=4, backlog_min=5)
    assert _feeder_with_lag(held=1, backlog_min=0)  # never below one record
    assert not _feeder_with_lag(held=0, backlog_min=0)


def test_fill_deadline_and_gap_rule_on_a_fake_clock() -> None:
    # started at t=10 s: 20 ms to fill without a backlog, 250 ms with one
    assert fill_left(10.0, 10.005, False, 0.02, 0.25) == pytest.approx(0.015)
    assert fill_left(10.0, 10.030, False, 0.02, 0.25) < 0
    assert fill_left(10.0, 10.030, True, 0.02, 0.25) == pytest.approx(0.22)
    # without a backlog any pause ends the batch; with one, only a pause of within_s
    assert gap_ends_batch(False, 0.001, 0.02)
    assert not gap_ends_batch(True, 0.001, 0.02)
    assert gap_ends_batch(True, 0.02, 0.02)
