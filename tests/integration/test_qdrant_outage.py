"""Qdrant outage (issue 6): with Qdrant unreachable the worker starts, lists keep flowing on the
`recommendations` topic, Qdrant writes wait in the writer (one pending point per user, retried
with backoff) and the metrics show it; when Qdrant returns, the backlog is written and drains to
zero (against a REST endpoint that really goes away: tests/integration/qdrant_rest.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stream.adapters.qdrant_sink import point_id
from stream.broker import free_port
from tests.conftest import WorkerProcess
from tests.integration.qdrant_rest import QdrantRest
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


def _wait_metrics(
    worker: WorkerProcess, ok: Any, what: str, timeout: float = 60
) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    metrics: dict[str, float] = {}
    while time.monotonic() < deadline:
        metrics = worker.metrics()
        if ok(metrics):
            return metrics
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f}s; qdrant metrics: "
                         f"{ {k: v for k, v in metrics.items() if 'qdrant' in k} }")  # fmt: skip


def test_writes_made_during_an_outage_arrive_when_qdrant_returns(deployment: Any) -> None:
    deployment.produce([("catalog", m) for m in CATALOG])
    qdrant = QdrantRest(free_port(), api_key="outage-key").start()
    worker = deployment.worker(
        "qdrant-returns", RECSTREAM_QDRANT_URL=qdrant.url, RECSTREAM_QDRANT_API_KEY="outage-key"
    ).start()
    try:
        worker.wait_ready()
        before = [f"u-return-{i}" for i in range(4)]
        during = [f"u-return-{i}" for i in range(2, 8)]  # two of them already written before
        for user in before:
            assert send_and_wait(deployment, [event("clicks", user, item_id="sku-4")])["items"]
        # (a list can be read back before its worker submits the point: wait for the writes)
        _wait_metrics(
            worker,
            lambda m: (
                m.get("recstream_qdrant_points_written_total", 0) >= len(before)
                and m.get("recstream_qdrant_pending_points") == 0
            ),
            "written",
        )
        assert all(qdrant.payload(point_id(u)) for u in before)
        written = worker.metrics()["recstream_qdrant_points_written_total"]
        qdrant.stop()  # the outage
        last: dict[str, dict[str, Any]] = {}
        for user in during:
            last[user] = send_and_wait(deployment, [event("clicks", user, item_id="sku-9")])
            assert last[user]["items"], "lists must keep flowing without Qdrant"
        backlog = _wait_metrics(
            worker,
            lambda m: (
                m.get("recstream_qdrant_errors_total", 0) >= 2
                and m.get("recstream_qdrant_pending_points") == len(during)
            ),
            "a backlog of one point per user, retried",
        )
        assert backlog["recstream_qdrant_points_written_total"] == written  # nothing got through
        assert backlog["recstream_qdrant_oldest_pending_seconds"] > 0
        qdrant.start()  # Qdrant returns on the same address
        after = _wait_metrics(
            worker, lambda m: m.get("recstream_qdrant_pending_points") == 0, "backlog drained"
        )
        assert after["recstream_qdrant_oldest_pending_seconds"] == 0
        assert after["recstream_qdrant_points_written_total"] >= written + len(during)
        for user in during:  # the newest list of each user, not an older one
            stored = qdrant.payload(point_id(user))
            assert stored is not None, user
            assert stored["trigger"]["event_id"] == last[user]["trigger"]["event_id"], user
            assert stored["state_version"] == last[user]["state_version"], user
            assert stored["item_ids"] == [i["item_id"] for i in last[user]["items"]], user
        assert qdrant.refused == 0, "the configured API key was not passed through"
        assert worker.process is not None and worker.process.poll() is None
    finally:
        worker.stop()
        qdrant.stop()
