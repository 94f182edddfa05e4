"""Broker outage (issue 6): a worker whose broker dies does not hang silently — it exits non-zero
(70) so a supervisor restarts it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stream.broker import start_broker
from tests.conftest import new_deployment
from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.integration


def test_worker_exits_non_zero_when_the_broker_is_gone(tmp_path: Path) -> None:
    own = start_broker(log_path=tmp_path / "broker.log")  # this test kills its own broker
    try:
        dep = new_deployment(own, tmp_path, RECSTREAM_BROKER_DOWN_EXIT_S="5")
        dep.produce([("catalog", m) for m in CATALOG])
        worker = dep.worker("w").start()
        worker.wait_ready()
        send_and_wait(dep, [event("clicks", "u-outage", item_id="sku-1")])
        own.stop()
        killed = time.monotonic()
        assert worker.process is not None
        code = worker.process.wait(timeout=60)
        took = time.monotonic() - killed
        print(f"worker exited {code} {took:.1f}s after the broker died")
        assert code == 70, worker.log()[-2000:]
        assert "unreachable" in worker.log()
    finally:
        own.stop()
        for w in dep.workers:
            w.stop()
