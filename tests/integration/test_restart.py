"""A restarted worker keeps its users' state and refreshes their lists on a stock-out: one
while it was down (at its start), and one after; and on a restock while it was down again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stream.tools import TopicReader, produce
from tests.conftest import Deployment, new_deployment
from tests.integration.test_pipeline import CATALOG, event, now_ms, send_and_wait

pytestmark = pytest.mark.integration


def stock_out(event_id: str, item_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "item_id": item_id, "ts": now_ms(), "available": 0}


async def refreshed_by(
    dep: Deployment, event_id: str, produce_first: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The first list on `recommendations` answering ``event_id`` (after producing the stock
    message ``produce_first``, if given)."""
    async with TopicReader(dep.settings, "recommendations") as reader:
        if produce_first is not None:
            await produce(dep.settings, [("stock", produce_first)])
        return await reader.wait_for(lambda m: m["trigger"]["event_id"] == event_id, timeout=30)


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
    # while no worker serves the user, an item in their list goes out of stock
    gone = first["items"][1]["item_id"]
    dep.produce([("stock", stock_out("down-stock", gone))])
    again = dep.worker("w").start()  # same data dir: RocksDB state + changelog
    try:
        again.wait_ready()
        # the restarted worker's check of the lists it indexed refreshes them without an event
        # from the user, naming the stock event that took the item out
        caught_up = asyncio.run(refreshed_by(dep, "down-stock"))
        assert caught_up["user_id"] == "u-restart"
        assert gone not in [it["item_id"] for it in caught_up["items"]]
        # no event from the user since the restart: only the rebuilt stock index knows them
        victim = caught_up["items"][0]["item_id"]
        message = asyncio.run(
            refreshed_by(dep, "restart-stock", stock_out("restart-stock", victim))
        )
        assert message["user_id"] == "u-restart"
        assert victim not in [it["item_id"] for it in message["items"]]
        # and the profile itself survived the restart: its version continues
        later = send_and_wait(dep, [event("clicks", "u-restart", item_id="sku-17")])
        assert later["state_version"] == first["state_version"] + 1
    finally:
        again.stop()
    # the lists lost both items to the stock, kept in the stored profile: one comes back while
    # no worker serves the user, and the restarted worker gives it back without their event
    back = {"event_id": "restart-back", "item_id": victim, "ts": now_ms(), "available": 4}
    dep.produce([("stock", back)])
    third = dep.worker("w").start()
    try:
        third.wait_ready()
        message = asyncio.run(refreshed_by(dep, "restart-back"))
        assert message["user_id"] == "u-restart" and message["trigger"]["topic"] == "stock"
    finally:
        third.stop()
