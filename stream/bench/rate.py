"""Counting events into a rate, inside a baseline process (first to last event, wall clock).

Baselines time themselves in-process (exact first and last event); the pipeline is a black box
timed from its /metrics counters. Both give events/s from the first to the last processed event
of the same pre-filled backlog, which is what the ratios compare.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson


class RateCounter:
    """``tick()`` per event; writes ``{"count", "first", "last", "eps"}`` once ``expect`` is hit."""

    def __init__(self, expect: int, result: Path) -> None:
        self.expect = expect
        self.result = result
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.first_n = 0  # events of the first tick: they arrived at ``first``, not after it
        self.written = False
        self.started = False

    def begin(self) -> None:
        """Start the clock now (before the first fetch) rather than at the first event: for a
        consumer that gets the whole backlog in a few fetches, the first batch is most of it."""
        self.first, self.first_n, self.started = time.time(), 0, True

    def tick(self, n: int = 1) -> None:
        now = time.time()
        if not self.started:
            self.first, self.first_n, self.started = now, n, True
        self.count += n
        self.last = now
        if self.count >= self.expect and not self.written:
            self.write()

    def write(self) -> None:
        """Atomically (rename), so the harness never reads half a file."""
        elapsed = self.last - self.first
        body = {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "eps": (self.count - self.first_n) / elapsed if elapsed > 0 else 0.0,
        }
        tmp = self.result.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(body))
        tmp.replace(self.result)
        self.written = True


def read_result(path: Path) -> dict[str, float] | None:
    return orjson.loads(path.read_bytes()) if path.is_file() else None
