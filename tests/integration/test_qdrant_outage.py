"""Qdrant outage (issue 6): with Qdrant unreachable the worker starts, lists keep flowing on the
`recommendations` topic, Qdrant writes wait in the writer (one pending point per user, retried
with backoff) and the metrics show it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stream.broker import free_port
from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.integration


def test_lists_flow_while_qdrant_is_down(deployment: Any) -> None:
    deployment.produce([("catalog", m) for m in CATALOG])
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    worker = deployment.worker("qdrant-down", RECSTREAM_QDRANT_URL=down).start()
    worker.wait_ready()
    users = [f"u-outage-{i}" for i in range(5)]
    for user in users:
        rec = send_and_wait(deployment, [event("clicks", user, item_id="sku-4")])
        assert rec["items"], "lists must keep flowing without Qdrant"
    deadline = time.monotonic() + 30
    metrics: dict[str, float] = {}
    while time.monotonic() < deadline:
        metrics = worker.metrics()
        errors = metrics.get("recstream_qdrant_errors_total", 0)
        if errors >= 2 and metrics.get("recstream_qdrant_pending_points") == len(users):
            break
        time.sleep(0.5)
    assert metrics.get("recstream_qdrant_errors_total", 0) >= 2, "failed writes are counted"
    assert metrics.get("recstream_qdrant_pending_points", 0) == len(users)  # one per user
    assert metrics.get("recstream_qdrant_points_written_total", 0) == 0
    assert metrics.get("recstream_qdrant_oldest_pending_seconds", 0) > 0  # staleness shows
    assert worker.process is not None and worker.process.poll() is None
    assert worker.stop() == 0  # and it still stops cleanly (the writer gives up on stop)
