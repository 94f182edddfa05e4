"""The demo's summary line: latency over the last window, not since the start."""

from __future__ import annotations

import time

from stream.demo import LiveView


def _list(latency_ms: int) -> dict[str, object]:
    return {
        "user_id": "u1",
        "latency_ms": latency_ms,
        "items": [{"item_id": "i1", "reasons": ["because"]}],
        "trigger": {"topic": "orders"},
    }


def test_the_summary_covers_the_last_window_only() -> None:
    view = LiveView({})
    view.on_message(_list(4_000))  # a fresh worker's start-up backlog
    start = time.monotonic()
    assert "latency p50 4000 ms" in view.summary(sent=1, now=start)
    for ms in (40, 50, 60):
        view.on_message(_list(ms))
    old_at, old_ms = view.latencies[0]
    view.latencies[0] = (old_at - 2 * view.window_s, old_ms)  # it arrived two windows ago
    line = view.summary(sent=4)
    assert "lists received 4" in line
    assert "latency p50 50 ms p95 60 ms" in line
    later = view.summary(sent=4, now=time.monotonic() + 3 * view.window_s)
    assert "latency -" in later  # nothing arrived in that window
