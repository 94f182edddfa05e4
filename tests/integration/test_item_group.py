"""The item group consumer (`catalog`, `stock` outside Faust): every record handed over once in
offset order per partition, offsets committed only after the handler returned, and a handler
that raises ends the loop visibly (the worker's watchdog then exits non-zero)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.item_group import ItemGroup
from stream.plan import Record
from stream.tools import produce
from tests.conftest import new_deployment

pytestmark = pytest.mark.integration


def item(i: int) -> dict[str, Any]:
    return {"event_id": f"e{i}", "ts": 1_700_000_000_000 + i, "item_id": f"sku-{i}"}


async def drain(group: ItemGroup, seen: list[Record], want: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        assert group.failed is None, group.failed
        await asyncio.sleep(0.05)


def test_records_are_handed_over_once_and_committed_after_the_handler(
    broker: Any, tmp_path: Path
) -> None:
    dep = new_deployment(broker, tmp_path)
    dep.produce([("catalog", item(i)) for i in range(40)] + [("stock", item(i)) for i in range(9)])

    async def run() -> tuple[list[Record], list[Record], dict[tuple[str, str, int], int]]:
        first: list[Record] = []

        async def keep(records: Sequence[Record]) -> None:
            first.extend(records)

        group = ItemGroup(dep.settings, ("catalog", "stock"), keep, batch_max=16, flavour="tansu")
        await group.start()
        try:
            await drain(group, first, 49)
            await asyncio.sleep(0.5)  # a last commit in flight
            lag = await group.lag()
        finally:
            await group.stop()
        # a new member of the same group resumes after the commits: nothing is handed twice
        await produce(dep.settings, [("stock", item(100))])
        again: list[Record] = []

        async def keep_again(records: Sequence[Record]) -> None:
            again.extend(records)

        group = ItemGroup(
            dep.settings, ("catalog", "stock"), keep_again, batch_max=16, flavour="tansu"
        )
        await group.start()
        try:
            await drain(group, again, 1)
            await asyncio.sleep(1.0)  # anything re-delivered would come now
        finally:
            await group.stop()
        return first, again, lag

    first, again, lag = asyncio.run(run())
    assert sorted((r.topic, r.offset, r.partition) for r in first) == sorted(
        set((r.topic, r.offset, r.partition) for r in first)
    )
    assert len(first) == 49 and {r.topic for r in first} == {"catalog", "stock"}
    for topic in ("catalog", "stock"):  # per partition, in offset order
        for p in {r.partition for r in first if r.topic == topic}:
            offsets = [r.offset for r in first if r.topic == topic and r.partition == p]
            assert offsets == sorted(offsets)
    assert all(r.timestamp_ms and r.timestamp_ms > 1_600_000_000_000 for r in first)
    assert lag and set(lag.values()) == {0}, lag  # every record committed
    assert {k[0] for k in lag} == {"group"}
    assert [(r.topic, r.key) for r in again] == [("stock", b"sku-100")]


def test_a_failing_handler_ends_the_loop_and_commits_nothing(broker: Any, tmp_path: Path) -> None:
    dep = new_deployment(broker, tmp_path)
    dep.produce([("catalog", item(i)) for i in range(5)])

    async def run() -> tuple[BaseException | None, int]:
        async def boom(records: Sequence[Record]) -> None:
            raise ValueError("handler bug")

        group = ItemGroup(dep.settings, ("catalog",), boom, batch_max=16, flavour="tansu")
        await group.start()
        try:
            deadline = time.monotonic() + 30
            while group.failed is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            failed = group.failed
        finally:
            await group.stop()
        seen: list[Record] = []

        async def keep(records: Sequence[Record]) -> None:
            seen.extend(records)

        group = ItemGroup(dep.settings, ("catalog",), keep, batch_max=16, flavour="tansu")
        await group.start()
        try:
            await drain(group, seen, 5)
        finally:
            await group.stop()
        return failed, len(seen)

    failed, redelivered = asyncio.run(run())
    assert isinstance(failed, ValueError)
    assert redelivered == 5  # nothing was committed: the next member gets all of it
