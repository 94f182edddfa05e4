"""A restarted worker resumes `learned` from its snapshot and ranks exactly as a full replay.

Phase 1 learns from a few users' events with a snapshot every second, one more user's events
after a snapshot, and is killed (SIGKILL: no snapshot at stop). Phase 2 restarts on the same
data dir: it restores the last periodic snapshot and reads `learned` on from there, and its
lists (refresh requests at a fixed time, so nothing but what was learned can differ) are taken.
Phase 3 restarts with snapshots off: a full replay of `learned` must give the same count of
applied observations and the same lists, item for item and score for score. Phase 4 tampers
with the snapshots, local and shared (their last record's timestamp, as after a recreated
topic): the worker must refuse both and replay from the start. Phase 5 starts a new worker on an
empty data dir: it restores the copy in the shared folder and ranks like the others.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from stream.adapters.learned_snapshots import FILE_NAME
from stream.tools import TopicReader, produce
from tests.conftest import Deployment, WorkerProcess, new_deployment
from tests.integration.test_pipeline import CATALOG, event, now_ms

pytestmark = pytest.mark.integration

USERS = [f"u-snap-{n}" for n in range(5)]


def answered(
    dep: Deployment, events: list[tuple[str, Any]], wanted: set[str]
) -> dict[str, dict[str, Any]]:
    """Produce ``events``; the lists answering the ``wanted`` ones, by event id (a user's
    events coalesced into one batch are answered by one list, naming the newest)."""

    async def run() -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        async with TopicReader(dep.settings, "recommendations") as reader:
            await reader.poll(10)
            await produce(dep.settings, events)
            while wanted - found.keys():
                got = await reader.wait_for(
                    lambda m: m["trigger"]["event_id"] in wanted - found.keys(), timeout=40
                )
                found[got["trigger"]["event_id"]] = got
        return found

    return asyncio.run(run())


def lists_at(dep: Deployment, ts: int, tag: str) -> dict[str, list[tuple[str, float]]]:
    refresh = [
        ("refresh", {"event_id": f"{tag}-{u}", "user_id": u, "ts": ts, "item_id": "sku-0"})
        for u in USERS
    ]
    found = answered(dep, refresh, {body["event_id"] for _, body in refresh})
    return {
        found[f"{tag}-{u}"]["user_id"]: [
            (i["item_id"], round(i["score"], 9)) for i in found[f"{tag}-{u}"]["items"]
        ]
        for u in USERS
    }


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.2)


def learn(
    dep: Deployment, worker: WorkerProcess, events: list[tuple[str, Any]], total: int
) -> None:
    """Produce ``events`` and wait until the worker has applied ``total`` user events (an
    order can be answered before its user's clicks, on another topic, were fetched)."""
    answered(dep, events, {body["event_id"] for topic, body in events if topic == "orders"})
    wait_until(lambda: processed(worker.metrics()) >= total, f"{total} events processed")
    assert processed(worker.metrics()) == total


def processed(metrics: dict[str, float]) -> float:
    """User events the worker applied (the catalog is counted too, under its own topic)."""
    return sum(metrics.get(f'recstream_events_processed_total{{topic="{t}"}}', 0.0)
               for t in ("clicks", "orders"))  # fmt: skip


def applied_at_ready(log: str) -> int:
    match = re.search(r"catalog replica ready: \d+ items, (\d+) learned observations", log)
    assert match, log[-3000:]
    return int(match.group(1))


def tamper(path: Path) -> None:
    """Change the timestamp of the record the snapshot says it applied last."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = orjson.loads(arrays["meta"].tobytes())
    for position in meta["positions"].values():
        position["ts"] += 1
    arrays["meta"] = np.frombuffer(orjson.dumps(meta), dtype=np.uint8)
    np.savez(path, **arrays)


def test_restart_from_snapshot_ranks_like_a_full_replay(broker: Any, tmp_path: Path) -> None:
    shared = tmp_path / "shared"  # every worker also copies its snapshot here
    dep = new_deployment(broker, tmp_path, RECSTREAM_LEARNED_SNAPSHOT_SHARED=str(shared))
    dep.produce([("catalog", m) for m in CATALOG])
    worker = dep.worker("w", RECSTREAM_LEARNED_SNAPSHOT_S="1").start()
    worker.wait_ready()
    rng = np.random.default_rng(11)
    history = []
    for user in USERS:
        for _ in range(6):
            sku = f"sku-{int(rng.integers(0, 40))}"
            history.append(event("clicks", user, item_id=sku))
        basket = [{"item_id": f"sku-{int(i)}", "qty": 1} for i in rng.integers(0, 40, 3)]
        history.append(event("orders", user, items=basket, order_id=f"o-{user}"))
    start = now_ms() - 600_000
    for n, (_, body) in enumerate(history):
        body["ts"] = start + n * 1000  # each user's order strictly their newest event
    early, late = history[:-7], history[-7:]  # the last user's events come after a snapshot
    learn(dep, worker, early, len(early))
    written = worker.log().count("learned snapshot written")
    wait_until(lambda: worker.log().count("learned snapshot written") > written, "a snapshot")
    learn(dep, worker, late, len(history))
    assert worker.stop(signal.SIGKILL) != 0  # a crash: only the periodic snapshots exist
    snapshot = tmp_path / "w" / FILE_NAME
    assert snapshot.exists()
    at = now_ms() + 60_000

    resumed = dep.worker("w").start()
    try:
        resumed.wait_ready()
        assert "learned snapshot restored" in resumed.log()
        learned = applied_at_ready(resumed.log())
        assert learned >= len(history)  # every click and order taught something
        from_snapshot = lists_at(dep, at, "snap")
    finally:
        assert resumed.stop() == 0

    replayed = dep.worker("w", RECSTREAM_LEARNED_SNAPSHOT_S="0").start()
    try:
        replayed.wait_ready()
        assert "learned snapshot" not in replayed.log()
        assert applied_at_ready(replayed.log()) == learned
        assert lists_at(dep, at, "full") == from_snapshot
    finally:
        assert replayed.stop() == 0

    copies = list(shared.glob("*.npz"))
    assert len(copies) == 1  # the resumed worker's clean stop copied its snapshot there
    for path in (snapshot, *copies):
        tamper(path)
    refused = dep.worker("w").start()
    try:
        refused.wait_ready()
        assert refused.log().count("does not match the topic") == 2
        assert "reading learned from the start" in refused.log()
        assert applied_at_ready(refused.log()) == learned
    finally:
        assert refused.stop() == 0

    # a new worker (empty data dir) starts from the shared copy the last clean stop wrote
    fresh = dep.worker("fresh").start()
    try:
        fresh.wait_ready()
        assert f"learned snapshot restored from {copies[0]}" in fresh.log()
        assert applied_at_ready(fresh.log()) == learned
        assert lists_at(dep, at, "fresh") == from_snapshot
    finally:
        assert fresh.stop() == 0
