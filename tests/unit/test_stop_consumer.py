"""``stop_consumer`` keeps aiokafka's own CancelledError out of its caller (a worker's start-up
exited 0 on it), but not a cancellation of the caller itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream.adapters.consumer_task import stop_consumer


class LeakyConsumer:
    """Its stop() raises the CancelledError of an internal task, as aiokafka's can."""

    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True
        inner = asyncio.ensure_future(asyncio.sleep(10))
        inner.cancel()
        await inner  # the internal task's CancelledError comes out of stop()


def test_an_internal_cancellation_does_not_escape() -> None:
    consumer: Any = LeakyConsumer()

    async def start_up() -> str:
        await stop_consumer(consumer)
        return "went on"

    assert asyncio.run(start_up()) == "went on"
    assert consumer.stopped


def test_without_the_helper_the_start_up_would_end() -> None:
    consumer: Any = LeakyConsumer()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(consumer.stop())


def test_a_cancelled_caller_is_still_cancelled() -> None:
    class SlowConsumer:
        async def stop(self) -> None:
            await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.ensure_future(stop_consumer(SlowConsumer()))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
