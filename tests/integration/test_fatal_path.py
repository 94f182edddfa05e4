"""The fatal path (issue 6): an agent that cannot proceed takes its worker down with exit code 70
so a supervisor restarts it, and the un-acknowledged batch is re-delivered and reflected exactly
once after the restart.

The failure is a real ``OSError`` from the worker's state store for one user, armed by the
documented ``RECSTREAM_FAULT_*`` variables (stream/adapters/fault.py) in two places: reading the
profile (nothing of the batch was sent yet) and writing it locally (everything was delivered, the
local write was not). The restarted worker runs without the fault, as after a repaired disk.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.fault import STATE_READ_USER, STATE_WRITE_USER
from stream.app import EXIT_AGENT_FAILED
from stream.tools import dump_profiles
from tests.conftest import Deployment, WorkerProcess, new_deployment
from tests.helpers import missing_versions, read_topic_until
from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.integration

VICTIM = "u-fatal"


def _replayed(worker: WorkerProcess) -> float:
    return sum(
        v for k, v in worker.metrics().items() if k.startswith("recstream_events_replayed_total")
    )


def _profile(dep: Deployment, user: str, n: int, timeout: float = 60) -> dict[str, Any]:
    """The user's stored profile (the changelog) once it reflects at least ``n`` events."""
    deadline = time.monotonic() + timeout
    profile: dict[str, Any] = {}
    while time.monotonic() < deadline:
        profile = asyncio.run(dump_profiles(dep.settings)).get(user, {})
        if profile.get("n", 0) >= n:
            return profile
        time.sleep(0.5)
    raise AssertionError(f"{user}: {profile.get('n', 0)} of {n} events applied in {timeout}s")


def _lists_of(dep: Deployment, user: str, version: int, triggers: set[str]) -> list[dict[str, Any]]:
    """The user's lists, read until versions 1..``version`` and a list answering one of
    ``triggers`` are there (or a deadline: a starved reader must not stop at a momentarily
    empty fetch)."""

    def mine(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in messages if m["user_id"] == user]

    def done(messages: list[dict[str, Any]]) -> bool:
        lists = mine(messages)
        return not missing_versions(lists, {user: version}) and any(
            m["trigger"]["event_id"] in triggers for m in lists
        )

    return mine(read_topic_until(dep.settings, "recommendations", done))


@pytest.mark.parametrize("fault", [STATE_READ_USER, STATE_WRITE_USER])
def test_agent_failure_exits_70_and_the_batch_is_applied_once_after_restart(
    fault: str, broker: Any, tmp_path: Path
) -> None:
    dep = new_deployment(broker, tmp_path)
    try:
        dep.produce([("catalog", m) for m in CATALOG])
        worker = dep.worker("w", **{fault: VICTIM}).start()
        worker.wait_ready()
        # healthy users are served while the fault is armed
        assert send_and_wait(dep, [event("clicks", "u-ok", item_id="sku-1")])["items"]
        batch = [
            event("clicks", VICTIM, item_id="sku-2"),
            event("carts", VICTIM, item_id="sku-2", action="add"),
            event("clicks", VICTIM, item_id="sku-7"),
        ]
        dep.produce(batch)
        assert worker.process is not None
        assert worker.process.wait(timeout=60) == EXIT_AGENT_FAILED, worker.log()[-3000:]
        log = worker.log()
        assert "FATAL: agent users cannot proceed" in log and "injected fault" in log
        restarted = dep.worker("w").start()  # same data dir, fault gone
        restarted.wait_ready()
        profile = _profile(dep, VICTIM, len(batch))
        assert profile["n"] == len(batch), "each event of the failed batch applied exactly once"
        if fault == STATE_WRITE_USER:
            # delivered before the crash: the re-delivered events are recognised as applied
            deadline = time.monotonic() + 30
            while _replayed(restarted) < 1 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _replayed(restarted) >= 1, "the un-acked batch was not re-delivered"
        # one more event: applied on top, once
        after = event("clicks", VICTIM, item_id="sku-9")
        assert send_and_wait(dep, [after])["items"]
        final = _profile(dep, VICTIM, len(batch) + 1)
        assert final["n"] == len(batch) + 1
        # the batch's list answers its newest event by event time; of events sent in the same
        # millisecond on two topics either may be the newest (Kafka orders topics apart)
        newest = max(m["ts"] for _, m in batch)
        answers = {m["event_id"] for _, m in batch if m["ts"] == newest}
        lists = _lists_of(dep, VICTIM, final["v"], answers)
        versions = collections.Counter(m["state_version"] for m in lists)
        assert set(range(1, final["v"] + 1)) <= set(versions), (final["v"], versions)
        triggers = {m["trigger"]["event_id"] for m in lists}
        assert answers & triggers, "the failed batch's list was never emitted"
        assert restarted.stop() == 0
    finally:
        for w in dep.workers:
            w.stop()
