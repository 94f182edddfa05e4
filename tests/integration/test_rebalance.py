"""Rebalance (issue 6): a second worker joins mid-stream, then the first is SIGKILLed.

Partitions move twice; processing continues on the survivor, which recovers the moved users'
state from the changelog; nothing is lost or counted twice. The recovery time (kill → all events
applied) is printed for the note.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import new_deployment
from tests.helpers import lists_with_every_version, missing_versions
from tests.integration.test_kill_restart import _load, _processed, _wait_complete

pytestmark = pytest.mark.integration


def _wait_processed(workers: list[Any], target: float, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sum(_processed(w) for w in workers) < target:
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.05)


def test_join_then_kill_loses_nothing(broker: Any, tmp_path: Path) -> None:
    catalog, events = _load()
    expected = collections.Counter(m["user_id"] for _, m in events)
    dep = new_deployment(broker, tmp_path)
    dep.produce([("catalog", m) for m in catalog])
    first = dep.worker("w1").start()
    first.wait_ready()

    # the last 30 events are held back until the first worker is dead: only the survivor can
    # process them, however far a slow machine let the first worker get before the kill (it
    # had processed everything, so the survivor nothing, with the load at 10 on 2 cores)
    streamed, after_kill = events[:-30], events[-30:]

    def paced() -> None:  # ~300 events/s, so the moves happen mid-stream
        for i in range(0, len(streamed), 30):
            dep.produce(streamed[i : i + 30])
            time.sleep(0.1)

    producer = threading.Thread(target=paced, daemon=True)
    producer.start()
    try:
        _wait_processed([first], 0.2 * len(events))
        second = dep.worker("w2").start()  # joins: the group rebalances, partitions move
        second.wait_ready()
        _wait_processed([first, second], 0.5 * len(events))
        killed_at = time.monotonic()
        assert first.stop(signal.SIGKILL) != 0  # its partitions move to the survivor
        producer.join(timeout=60)
        dep.produce(after_kill)
        profiles = _wait_complete(dep, expected, timeout=120)
        recovery = time.monotonic() - killed_at
        print(f"rebalance after SIGKILL: all events applied {recovery:.1f}s after the kill")
        assert second.process is not None and second.process.poll() is None
        assert _processed(second) > 0
    finally:
        producer.join(timeout=60)
        for w in dep.workers:
            w.stop()
    for user, n in expected.items():
        assert profiles[user]["n"] == n, (user, profiles[user]["n"], n)  # once each
    final = {user: profile["v"] for user, profile in profiles.items()}
    lists = lists_with_every_version(dep.settings, final)  # read until all there, or a deadline
    assert not missing_versions(lists, final), missing_versions(lists, final)
