"""The worker keeps each user's latest list in Qdrant, through both adapters (issue 2)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.qdrant_sink import make_user_sink
from stream.tools import TopicReader
from tests.conftest import new_deployment
from tests.integration.test_pipeline import CATALOG, event

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("adapter", ["edge", "qdrant-client-local"])
def test_users_point_holds_the_latest_list(adapter: str, broker: Any, tmp_path: Path) -> None:
    env = {}
    if adapter != "edge":
        env["RECSTREAM_QDRANT_URL"] = f"local://{tmp_path / 'qdrant-local'}"
    dep = new_deployment(broker, tmp_path, **env)
    dep.produce([("catalog", m) for m in CATALOG])
    worker = dep.worker("w").start()
    try:
        worker.wait_ready()
        users = [f"u-q{i}" for i in range(3)]
        last_ids = {}
        for round_ in range(3):
            batch = [
                event("clicks", u, item_id=f"sku-{(i * 7 + round_ * 13) % 120}")
                for i, u in enumerate(users)
            ]
            dep.produce(batch)
            last_ids.update({m["user_id"]: m["event_id"] for _, m in batch})

        async def latest() -> dict[str, dict[str, Any]]:
            async with TopicReader(dep.settings, "recommendations") as reader:
                for u in users:
                    await reader.wait_for(lambda m, u=u: m["trigger"]["event_id"] == last_ids[u])
                await reader.poll(200)
                return {m["user_id"]: m for m in reader.messages}

        final = asyncio.run(latest())
        time.sleep(0.5)  # coalesced writes flush within a few ms; give the writer its turn
    finally:
        assert worker.stop() == 0, worker.log()[-3000:]
    sink = make_user_sink(env.get("RECSTREAM_QDRANT_URL"), None, tmp_path / "w")
    try:
        assert sink.count() == len(users)
        for u in users:
            stored = sink.get(u)
            assert stored is not None, u
            assert stored["trigger"]["event_id"] == last_ids[u]
            assert [it["item_id"] for it in stored["items"]] == [
                it["item_id"] for it in final[u]["items"]
            ]
    finally:
        sink.close()
