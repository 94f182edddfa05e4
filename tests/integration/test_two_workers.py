"""Catalog and stock reach every worker, not only the one owning their partition (issue 2, #3).

Faust's GlobalTable fails exactly this on the bundled broker (DESIGN.md): each worker saw only
its own partitions' keys. Here both workers must rank with the full catalog and both must
refresh their own users when an item goes out of stock.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from stream.tools import TopicReader
from tests.conftest import new_deployment
from tests.integration.test_pipeline import CATALOG, event, now_ms

pytestmark = pytest.mark.integration


def test_two_workers_share_catalog_and_stock(broker: Any, tmp_path: Path) -> None:
    dep = new_deployment(broker, tmp_path)
    dep.produce([("catalog", m) for m in CATALOG])
    w1 = dep.worker("w1").start()
    w2 = dep.worker("w2").start()
    try:
        w1.wait_ready()
        w2.wait_ready()
        users = [f"u-two-{i}" for i in range(16)]
        # everyone views the same item, so everyone's list shares its neighbours
        clicks = [event("clicks", u, item_id="sku-5") for u in users]
        last = {m["user_id"]: m["event_id"] for _, m in clicks}

        async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            async with TopicReader(dep.settings, "recommendations") as reader:
                from stream.tools import produce

                await produce(dep.settings, clicks)
                lists = {}
                for u in users:
                    lists[u] = await reader.wait_for(
                        lambda m, u=u: m["trigger"]["event_id"] == last[u], timeout=60
                    )
                # catalog items only the other worker's partitions carried are still rankable
                shared = set.intersection(
                    *[{it["item_id"] for it in m["items"]} for m in lists.values()]
                )
                assert shared, "users with identical histories should share candidates"
                victim = sorted(shared)[0]
                stock = {"event_id": "two-stock", "item_id": victim, "ts": now_ms(), "available": 0}
                await produce(dep.settings, [("stock", stock)])
                refreshed = []
                deadline = time.monotonic() + 30
                while len({m["user_id"] for m in refreshed}) < len(users):
                    assert time.monotonic() < deadline, "not every worker refreshed its users"
                    await reader.poll(100)
                    refreshed = [
                        m for m in reader.messages if m["trigger"]["event_id"] == "two-stock"
                    ]
                for m in refreshed:
                    assert victim not in [it["item_id"] for it in m["items"]]
                return lists, refreshed

        _, refreshed = asyncio.run(run())
        # both workers did real work: each emitted refreshes for the users it owns
        m1, m2 = w1.metrics(), w2.metrics()
        r1 = m1.get("recstream_stock_refreshes_total", 0)
        r2 = m2.get("recstream_stock_refreshes_total", 0)
        assert r1 > 0 and r2 > 0, (r1, r2)
        assert r1 + r2 == len(users) == len({m["user_id"] for m in refreshed})
        for m in (m1, m2):
            assert m["recstream_catalog_items"] == len(CATALOG)
    finally:
        w1.stop()
        w2.stop()
