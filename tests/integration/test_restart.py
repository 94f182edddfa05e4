"""A restarted worker keeps its users' state and still refreshes their lists on a stock-out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stream.tools import TopicReader
from tests.conftest import new_deployment
from tests.integration.test_pipeline import CATALOG, event, now_ms, send_and_wait

pytestmark = pytest.mark.integration


def test_restart_keeps_state_and_stock_refreshes(broker: Any, tmp_path: Path) -> None:
    dep = new_deployment(broker, tmp_path)
    dep.produce([("catalog", m) for m in CATALOG])
    worker = dep.worker("w").start()
    worker.wait_ready()
    first = send_and_wait(
        dep, [event("clicks", "u-restart", item_id=f"sku-{i}") for i in (2, 7, 12)]
    )
    assert worker.stop() == 0
    assert "SIGTERM received: stopping" in worker.log()  # a stop from outside says so
    again = dep.worker("w").start()  # same data dir: RocksDB state + changelog
    try:
        again.wait_ready()
        # no event from the user since the restart: only the rebuilt stock index knows them
        victim = first["items"][0]["item_id"]
        stock = {"event_id": "restart-stock", "item_id": victim, "ts": now_ms(), "available": 0}

        async def refreshed() -> dict[str, Any]:
            async with TopicReader(dep.settings, "recommendations") as reader:
                from stream.tools import produce

                await produce(dep.settings, [("stock", stock)])
                return await reader.wait_for(
                    lambda m: m["trigger"]["event_id"] == "restart-stock", timeout=30
                )

        message = asyncio.run(refreshed())
        assert message["user_id"] == "u-restart"
        assert victim not in [it["item_id"] for it in message["items"]]
        # and the profile itself survived the restart: its version continues
        later = send_and_wait(dep, [event("clicks", "u-restart", item_id="sku-17")])
        assert later["state_version"] == first["state_version"] + 1
    finally:
        again.stop()
