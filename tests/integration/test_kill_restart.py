"""Crash safety (issue 6): SIGKILL mid-replay, restart on the same data dir, lose nothing.

Two deployments on one broker replay the same real events (MovieLens-100K ratings as clicks,
orders and returns). One worker runs uninterrupted; the other is SIGKILLed half-way and restarted.
Then: every stored profile is identical in content (each event applied exactly once), every state
version of every user reached `recommendations`, and the final lists match (what the worker learned
— popularity, item relations — survived the crash through the `learned` topic).
"""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from stream.datasets import load_subset
from stream.domain.profile import DEFAULT_PROFILE_CONFIG
from stream.tools import TopicReader, dump_profiles
from tests.conftest import Deployment, WorkerProcess, new_deployment
from tests.helpers import lists_with_every_version, missing_versions

pytestmark = pytest.mark.integration

#: Fields that depend on how events were batched, not on which events were applied:
#: the step counter and the list last shown.
BATCHING_FIELDS = ("v", "li")


def _load() -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
    data = load_subset("movielens", max_users=30, seed=3)
    events = []
    for message in data.events:
        body = dict(message)
        events.append((body.pop("topic"), body))
    return list(data.catalog), events


def _processed(worker: WorkerProcess) -> float:
    """User events processed so far (catalog messages are counted too, so leave them out)."""
    return sum(
        v
        for k, v in worker.metrics().items()
        if k.startswith("recstream_events_processed_total") and 'topic="catalog"' not in k
    )


def _wait_complete(dep: Deployment, expected: dict[str, int], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    profiles: dict[str, Any] = {}
    while time.monotonic() < deadline:
        profiles = asyncio.run(dump_profiles(dep.settings))
        if all(profiles.get(u, {}).get("n", 0) >= n for u, n in expected.items()):
            return profiles
        time.sleep(1.0)
    short = {u: (profiles.get(u, {}).get("n", 0), n) for u, n in expected.items()}
    short = {u: c for u, c in short.items() if c[0] < c[1]}
    raise AssertionError(
        f"{dep.settings.topic_prefix}: {len(short)} users incomplete after {timeout:.0f}s "
        f"(applied, expected): {short}"
    )


def _run(
    dep: Deployment, catalog: list[Any], events: list[Any], kill_at: float | None
) -> WorkerProcess:
    """Replay into a fresh worker (SIGKILLed at ``kill_at`` of the events, then restarted)."""
    dep.produce([("catalog", m) for m in catalog])
    # record time = event time: both deployments' copies then carry the same record times, so
    # a worker hands each fetch over in the same order (stream.adapters.event_time); with send
    # times, equal event times of one user on two topics came in an order that depended on
    # when each copy was produced
    dep.produce(events, event_time=True)
    worker = dep.worker("w").start()
    worker.wait_ready()
    if kill_at is not None:
        deadline = time.monotonic() + 120
        while _processed(worker) < kill_at * len(events):
            assert time.monotonic() < deadline, "worker made no progress"
            time.sleep(0.02)
        assert worker.stop(signal.SIGKILL) != 0
        worker = dep.worker("w").start()  # same data dir
        worker.wait_ready()
    return worker


def test_sigkill_midway_then_restart_equals_an_uninterrupted_run(
    broker: Any, tmp_path: Path
) -> None:
    catalog, events = _load()
    expected = collections.Counter(m["user_id"] for _, m in events)
    (tmp_path / "plain").mkdir()
    (tmp_path / "crashed").mkdir()
    plain = new_deployment(broker, tmp_path / "plain")
    crashed = new_deployment(broker, tmp_path / "crashed")
    try:
        first = _run(plain, catalog, events, kill_at=None)
        second = _run(crashed, catalog, events, kill_at=0.5)
        want = _wait_complete(plain, expected)
        got = _wait_complete(crashed, expected)
        first.stop()  # the probe below restarts both (a clean restart keeps learning too)
        second.stop()
    finally:
        for dep in (plain, crashed):
            for w in dep.workers:
                w.stop()
    assert set(got) == set(want) == set(expected)
    for user, profile in want.items():
        assert profile["n"] == expected[user]  # every event applied exactly once
        assert got[user]["n"] == expected[user], f"{user}: {got[user]['n']} != {expected[user]}"
        _assert_same_profile(got[user], profile)
    # every state version of every user reached `recommendations` (repeats allowed); read until
    # they are all there, not until the topic goes quiet (a starved reader stops early)
    final = {user: profile["v"] for user, profile in got.items()}
    lists = lists_with_every_version(crashed.settings, final)
    assert not missing_versions(lists, final), missing_versions(lists, final)
    # what was learned survived: one more identical click per user gives the same lists
    probe_ts = max(m["ts"] for _, m in events) + 60_000
    lists = {}
    for name, dep in (("plain", plain), ("crashed", crashed)):
        lists[name] = _probe(dep, sorted(expected), catalog[0]["item_id"], probe_ts)
    overlaps = [
        len(set(lists["plain"][u]) & set(lists["crashed"][u])) / max(1, len(lists["plain"][u]))
        for u in expected
    ]
    mean = sum(overlaps) / len(overlaps)
    print(f"probe overlap@10 {mean:.3f}")
    worst = sorted(zip(overlaps, expected, strict=True))[:3]
    detail = {u: (lists["plain"][u], lists["crashed"][u]) for _, u in worst}
    # Issue 6 asks for >= 0.95. What a worker learns is a function of the events, not of how a
    # user's topics interleaved (stream.domain.pairing, stream.domain.first_seen); losing what was
    # learned gives 0.39-0.67.
    assert mean >= 0.95, f"lists after a probe click overlap@10 {mean:.3f}; worst: {detail}"


#: the bound of each compared profile table ("s" session, "l" long-term, "p" purchases)
BOUNDS = {
    "s": DEFAULT_PROFILE_CONFIG.max_session_features,
    "l": DEFAULT_PROFILE_CONFIG.max_long_features,
    "p": DEFAULT_PROFILE_CONFIG.max_purchases,
}


def _assert_same_profile(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Equal in everything the events determine. Affinities are compared to 1e-9 (relative):
    events of one user on different topics may be applied in a different order by two runs
    (Kafka orders a user's events within a topic only), which changes the last bits of a sum
    and, in a full table, which of the weakest entries is pruned."""
    user = want["u"]
    for key in ("u", "o", "r", "b", "bt", "n", "t"):
        assert got[key] == want[key], (user, key)
    assert sorted(map(tuple, got["q"])) == sorted(map(tuple, want["q"])), (user, "q")
    for key in ("s", "l", "p"):
        a, b = got[key], want[key]
        # a full table prunes its weakest entries; with another order it may cut others, so
        # the strongest entries (what ranking uses) must agree and the values must match.
        # A table at its bound has pruned: an entry cut in one run and later added again
        # restarts its sum, so there values agree to 2 %, not to the last bits (README,
        # "Guarantees"); a table that never filled up must agree exactly.
        tolerance = 0.02 if len(b) >= BOUNDS[key] else 1e-9
        strongest = sorted(b, key=lambda f: -abs(b[f][0]))[: len(b) // 2]
        assert set(strongest) <= set(a), (user, key, set(strongest) - set(a))
        for f in strongest:
            assert a[f][1] == b[f][1], (user, key, f)
            assert abs(a[f][0] - b[f][0]) <= tolerance * max(1.0, abs(b[f][0])), (user, key, f)


def _probe(dep: Deployment, users: list[str], item: str, ts: int) -> dict[str, list[str]]:
    """Send the same click for every user; the top 10 of each answering list."""
    worker = dep.worker("w").start()
    try:
        worker.wait_ready()
        clicks = [
            ("clicks", {"event_id": f"probe-{u}", "user_id": u, "item_id": item, "ts": ts})
            for u in users
        ]

        async def run() -> dict[str, list[str]]:
            # one at a time, in the same order for both runs: each probe also teaches the shared
            # models (popularity, relations), so a different interleaving would change the lists
            async with TopicReader(dep.settings, "recommendations") as reader:
                from stream.tools import produce

                out: dict[str, list[str]] = {}
                for u, click in zip(users, clicks, strict=True):
                    await produce(dep.settings, [click])
                    m = await reader.wait_for(
                        lambda m, u=u: m["trigger"]["event_id"] == f"probe-{u}", timeout=60
                    )
                    out[u] = [it["item_id"] for it in m["items"][:10]]
                return out

        return asyncio.run(run())
    finally:
        worker.stop()
