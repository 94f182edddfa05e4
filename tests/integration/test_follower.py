"""A follower applying a large fetch lets the rest of the event loop run between slices: a bulk
catalog import must not hold the user agent's batches until the whole fetch is applied."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from stream.adapters import follower as follower_module
from stream.adapters.follower import Follower
from tests.conftest import new_deployment

pytestmark = pytest.mark.integration


def test_other_tasks_run_while_a_big_fetch_is_applied(
    broker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = new_deployment(broker, tmp_path)
    n = 2_000
    dep.produce([("catalog", {"item_id": f"sku-{i}", "ts": i}) for i in range(n)])
    monkeypatch.setattr(follower_module, "YIELD_EVERY_S", 0.0)  # a slice per record

    async def run() -> list[int]:
        turns = 0
        seen: list[int] = []  # the other task's turns, as each record is applied

        async def apply(topic: str, record: Any) -> None:
            seen.append(turns)

        async def other_task() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(other_task())
        f = Follower(dep.settings, [dep.settings.topic("catalog")], apply, "test-follower")
        await f.start()
        try:
            assert await f.caught_up(timeout=30.0)
        finally:
            await f.stop()
            ticker.cancel()
        return seen

    seen = asyncio.run(run())
    assert len(seen) == n
    # fetches hold hundreds of records each; every record still gave the other task a turn
    assert all(b > a for a, b in itertools.pairwise(seen)), "no interleaving"
