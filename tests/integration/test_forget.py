"""Right to erasure (issue 6): `recstream forget USER` removes a shopper everywhere, for good."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.qdrant_edge_sink import EdgeUserSink
from stream.tools import TopicReader, dump_profiles, read_latest
from tests.conftest import new_deployment
from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.integration


def _forget(dep: Any, user: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "forget", user],
        env=dep.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def _wait_tombstone(dep: Any, user: str) -> None:
    async def run() -> dict[str, Any]:
        async with TopicReader(dep.settings, "recommendations") as reader:
            return await reader.wait_for(
                lambda m: m["user_id"] == user and bool(m.get("tombstone")), timeout=30
            )

    asyncio.run(run())


def _read_back(
    dep: Any, ready: Callable[[dict[str, Any], dict[str, Any]], bool], timeout: float = 30
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stored profiles and latest lists, read again until ``ready`` holds or ``timeout``: each
    read ends at a few empty fetches, which can come early when the machine is starved, and the
    changelog's tombstone is not ordered with the list's."""
    deadline = time.monotonic() + timeout
    while True:
        profiles = asyncio.run(dump_profiles(dep.settings))
        latest = asyncio.run(read_latest(dep.settings, "recommendations"))
        if ready(profiles, latest) or time.monotonic() > deadline:
            return profiles, latest
        time.sleep(0.5)


def test_forget_erases_state_qdrant_list_and_survives_recovery(broker: Any, tmp_path: Path) -> None:
    dep = new_deployment(broker, tmp_path)
    dep.produce([("catalog", m) for m in CATALOG])
    worker = dep.worker("w").start()
    worker.wait_ready()
    keep, gone = "u-keep", "u-gone"
    versions = {
        user: send_and_wait(dep, [event("clicks", user, item_id=f"sku-{i}") for i in (1, 6, 11)])[
            "state_version"
        ]
        for user in (keep, gone)
    }
    _forget(dep, gone)
    _wait_tombstone(dep, gone)
    erased = lambda p, r: gone not in p and keep in p and gone in r and r[gone] is None  # noqa: E731
    profiles, latest = _read_back(dep, erased)  # a real loss or resurrection still fails below
    assert gone not in profiles and keep in profiles  # changelog tombstone, other users kept
    assert latest[gone] is None  # compaction keeps only the null value for this key
    assert worker.stop() == 0
    # the Qdrant point is gone, the other user's stays (the shard is free once the worker stops)
    sink = EdgeUserSink(dep.data_dir / "w" / "qdrant-edge" / "users")
    try:
        assert sink.get(gone) is None and sink.get(keep) is not None
    finally:
        sink.close()
    # recovery from the changelog alone (local state deleted) must not resurrect the user
    shutil.rmtree(dep.data_dir / "w" / "state")
    again = dep.worker("w").start()
    try:
        again.wait_ready()
        fresh = send_and_wait(dep, [event("clicks", gone, item_id="sku-3")])
        assert fresh["state_version"] == 1  # a new profile, not the forgotten one continued
        kept = send_and_wait(dep, [event("clicks", keep, item_id="sku-3")])
        assert kept["state_version"] == versions[keep] + 1  # recovered from the changelog
        profile = asyncio.run(dump_profiles(dep.settings))[gone]
        assert [q[0] for q in profile["q"]] == ["sku-3"]  # nothing from before the erasure
    finally:
        again.stop()
