"""InFlight: completions in batch order, writes readable until then, a bound, failures carried."""

from __future__ import annotations

import asyncio

import pytest

from stream.inflight import NOT_PENDING, InFlight


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_write_is_read_from_here_until_its_batch_completed() -> None:
    async def scenario() -> list[object]:
        flight = InFlight(limit=4)
        delivered = asyncio.Event()
        seen: list[object] = []

        async def complete() -> None:
            await delivered.wait()
            seen.append(flight.read("u1"))  # still held while the batch completes

        task = flight.start([("u1", 0, b"v1"), ("u2", 1, None)], complete)
        seen += [flight.read("u1"), flight.read("u2"), flight.read("u3")]
        delivered.set()
        await task
        seen += [flight.read("u1"), flight.read("u2")]
        return seen

    seen = asyncio.run(scenario())
    # u2's pending delete reads as (True, None): not the same as "nothing pending"
    assert seen == [
        (True, b"v1"),
        (True, None),
        NOT_PENDING,
        (True, b"v1"),
        NOT_PENDING,
        NOT_PENDING,
    ]


def test_completions_run_in_batch_order_whatever_order_deliveries_finish_in() -> None:
    async def scenario() -> list[str]:
        flight = InFlight(limit=4)
        gates = [asyncio.Event() for _ in range(3)]
        order: list[str] = []

        def completion(n: int) -> object:
            async def complete() -> None:
                await gates[n].wait()
                order.append(f"b{n}")

            return complete

        tasks = [flight.start([], completion(n)) for n in range(3)]  # type: ignore[arg-type]
        gates[2].set()
        gates[1].set()
        await _settle()
        assert order == []  # b1 and b2 are delivered, but b0 is not: nothing completes
        gates[0].set()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["b0", "b1", "b2"]


def test_a_newer_write_of_the_same_user_outlives_the_older_batch() -> None:
    async def scenario() -> tuple[object, object]:
        flight = InFlight(limit=4)
        second_done = asyncio.Event()

        async def first() -> None:
            return None

        async def second() -> None:
            await second_done.wait()

        one = flight.start([("u1", 0, b"old")], first)
        two = flight.start([("u1", 0, b"new")], second)
        await one
        after_first = flight.read("u1")
        second_done.set()
        await two
        return after_first, flight.read("u1")

    after_first, after_second = asyncio.run(scenario())
    assert after_first == (True, b"new")
    assert after_second == NOT_PENDING


def test_admit_waits_while_limit_batches_are_in_flight() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        flight = InFlight(limit=2)
        gate = asyncio.Event()

        async def slow() -> None:
            await gate.wait()

        flight.start([], slow)
        flight.start([], slow)
        admitted = asyncio.create_task(flight.admit())
        await _settle()
        blocked = not admitted.done()
        gate.set()
        await asyncio.wait_for(admitted, 1.0)
        drained = await flight.drain(timeout=1.0)
        return blocked, drained, len(flight)

    blocked, drained, left = asyncio.run(scenario())
    assert blocked and drained and left == 0


def test_a_failed_batch_fails_the_batches_after_it_and_releases_their_writes() -> None:
    async def scenario() -> tuple[list[str], object]:
        flight = InFlight(limit=4)
        ran: list[str] = []

        async def broken() -> None:
            raise OSError("delivery failed")

        async def fine() -> None:
            ran.append("later")

        first = flight.start([("u1", 0, b"a")], broken)
        later = flight.start([("u2", 0, b"b")], fine)
        results = await asyncio.gather(first, later, return_exceptions=True)
        assert all(isinstance(r, OSError) for r in results)
        return ran, flight.read("u2")

    ran, u2 = asyncio.run(scenario())
    assert ran == []  # the later batch never wrote anything: it is re-delivered after restart
    assert u2 == NOT_PENDING


def test_drain_gives_up_after_its_timeout() -> None:
    async def scenario() -> tuple[bool, int]:
        flight = InFlight(limit=1)

        async def never() -> None:
            await asyncio.Event().wait()

        task = flight.start([], never)
        drained = await flight.drain(timeout=0.01)
        left = len(flight)
        task.cancel()
        return drained, left

    assert asyncio.run(scenario()) == (False, 1)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        InFlight(limit=0)
