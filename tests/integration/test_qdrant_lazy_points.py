"""The coalescing writer's lazily built points (``submit_lazy``) against real sinks.

Why lazy: a list superseded within the flush window never needs its point (the user vector
and the payload), so the worker builds only the ones that are written.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream.adapters.coalescing_writer import CoalescingWriter
from stream.adapters.qdrant_sink import UserPoint
from tests.integration.test_qdrant_sinks import DIM, RecordingSink, _point, _vec, sink

__all__ = ["sink"]  # the fixture, parametrised over Edge (JSON and structured) and the client


class Builds:
    """Point builders that count their calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, user: str, items: list[str], seed: int) -> Any:
        def build() -> UserPoint:
            self.calls.append(f"{user}:{seed}")
            return _point(user, items, seed)

        return build


def test_only_the_newest_lazy_point_per_user_is_built_and_written(sink: Any) -> None:
    builds, cpu = Builds(), []

    async def main() -> None:
        writer = CoalescingWriter(sink, flush_ms=200, on_build_cpu=cpu.append)
        await writer.start()
        for seed in range(5):  # one user's burst inside one window: one build, the last
            writer.submit_lazy("alice", builds("alice", [f"a{seed}"], seed))
        writer.submit_lazy("bob", builds("bob", ["b"], 9))
        assert builds.calls == []  # nothing is built at submit
        assert await writer.wait_idle(30.0)
        await writer.stop()
        assert writer.stats.points_written == 2 and writer.stats.coalesced == 4

    asyncio.run(main())
    assert sorted(builds.calls) == ["alice:4", "bob:9"]
    assert [i["item_id"] for i in sink.get("alice")["items"]] == ["a4"]
    assert len(cpu) == 1 and cpu[0] >= 0.0


def test_a_failing_or_misshapen_build_drops_only_its_point(sink: Any) -> None:
    def broken() -> UserPoint:
        raise KeyError("lookup swapped")

    async def main() -> None:
        writer = CoalescingWriter(sink, flush_ms=1)
        await writer.start()
        writer.submit_lazy("broken", broken)
        writer.submit_lazy("short", lambda: UserPoint("short", [0.0] * (DIM - 1), {}))
        writer.submit_lazy("fine", lambda: _point("fine", ["x"], 1))
        assert await writer.wait_idle(30.0)
        await writer.stop()
        st = writer.stats
        assert st.rejected == 2 and st.points_written == 1 and st.errors == 0

    asyncio.run(main())
    assert sink.get("fine") is not None
    assert sink.get("broken") is None and sink.get("short") is None


def test_a_failed_write_retries_the_built_point_without_building_it_again(sink: Any) -> None:
    rec, builds = RecordingSink(sink, fail=2), Builds()

    async def main() -> None:
        writer = CoalescingWriter(rec, flush_ms=1, retry_backoff_s=0.01)
        await writer.start()
        writer.submit_lazy("carol", builds("carol", ["c"], 3))
        assert await writer.wait_idle(30.0)
        await writer.stop()
        assert writer.stats.errors == 2 and writer.stats.points_written == 1

    asyncio.run(main())
    assert builds.calls == ["carol:3"]
    assert sink.get("carol") is not None


@pytest.mark.parametrize("newer", ["eager", "delete"])
def test_a_newer_submit_replaces_a_pending_builder_unbuilt(sink: Any, newer: str) -> None:
    builds = Builds()

    async def main() -> None:
        writer = CoalescingWriter(sink, flush_ms=100)
        await writer.start()
        writer.submit_lazy("dave", builds("dave", ["old"], 1))
        if newer == "eager":
            writer.submit(UserPoint("dave", _vec(2), {"items": [{"item_id": "new"}]}))
        else:
            writer.submit_delete("dave")
        assert await writer.wait_idle(30.0)
        await writer.stop()

    asyncio.run(main())
    assert builds.calls == []
    got = sink.get("dave")
    assert (got is None) if newer == "delete" else got["items"][0]["item_id"] == "new"
