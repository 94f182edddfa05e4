"""Waiting helpers for tests that read what a live worker wrote.

Reading a topic "until it goes quiet" (no record within a few hundred ms) ends early on a slow,
busy machine: a starved broker or reader can leave a fetch empty while records are still there.
And the bundled broker reports wrong end offsets for multi-record batches (stream/tools.py,
``read_latest``), so "until the end offset" is no option either. These helpers read until what
the test needs is there, and give up only after a deadline meant for a stuck worker, not a slow
one; the caller then asserts on what was read, so a real loss still fails with details.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stream.settings import Settings
from stream.tools import TopicReader

Messages = list[dict[str, Any]]


def read_topic_until(
    settings: Settings, topic: str, done: Callable[[Messages], bool], timeout: float = 60.0
) -> Messages:
    """Every message of ``topic`` read from the beginning until ``done(messages)`` holds or
    ``timeout`` seconds passed (then what was read so far: the caller's assertion says what is
    missing)."""

    async def run() -> Messages:
        async with TopicReader(settings, topic) as reader:
            deadline = time.monotonic() + timeout
            while not done(reader.messages) and time.monotonic() < deadline:
                await reader.poll(200)
            return reader.messages

    return asyncio.run(run())


def versions_by_user(messages: Iterable[Mapping[str, Any]]) -> dict[str, set[int]]:
    """The ``state_version`` of every list read, by user."""
    versions: dict[str, set[int]] = collections.defaultdict(set)
    for message in messages:
        versions[message["user_id"]].add(message["state_version"])
    return versions


def missing_versions(
    messages: Iterable[Mapping[str, Any]], final: Mapping[str, int]
) -> dict[str, list[int]]:
    """For each user, the state versions 1..``final[user]`` no list carried (empty: complete)."""
    seen = versions_by_user(messages)
    gaps = {user: sorted(set(range(1, v + 1)) - seen[user]) for user, v in final.items()}
    return {user: gap for user, gap in gaps.items() if gap}


def lists_with_every_version(
    settings: Settings, final: Mapping[str, int], timeout: float = 60.0
) -> Messages:
    """`recommendations` read until every user's versions 1..``final[user]`` were seen."""
    return read_topic_until(
        settings, "recommendations", lambda ms: not missing_versions(ms, final), timeout
    )


def cpu_contention(probe_s: float = 0.5) -> float:
    """Wall time over CPU time of a short busy loop in this process (>= 1): about how many
    runnable processes share each core right now, so how much slower than on an idle machine
    a CPU-bound child (a worker) runs. Independent of the CPU's own speed."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < probe_s:
        sum(range(10_000))
    return max(1.0, (time.perf_counter() - wall0) / max(1e-6, time.process_time() - cpu0))
