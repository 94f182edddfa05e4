"""Which list answers which event, and the latency figures of a level.

Which answer belongs to an event: the worker coalesces a user's burst into one ranking that
answers the burst's newest event (``Engine.step``), so an event's answer is the first list for
that user whose trigger is this event or a later one of the same user (same level; later by
event time, and an event of the same instant counts as well: see ``answered_latencies``). Its
latency is that list's arrival at the probe minus the event's send time (both wall clock, same
machine). Events with no such list within the level are counted as ``unanswered``; the first
``WARMUP_S`` of a level are not counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

WARMUP_S = 0.5


def answered_latencies(sent: Path, received: dict[str, float]) -> tuple[np.ndarray, int]:
    """Latency (ms) of every event after warm-up, and how many got no answer.

    A list answers its user's events up to its trigger's event time, so events are matched by
    event time (the log's 4th column; send order when any line lacks it). Events of one user with
    the same event time share their answers: the worker names the last of equals in the order
    it fetched them, which need not be the order they were sent (a click and a cart of one
    instant go to different topics). An answer counts only if it arrived after the send."""
    rows = [line.split("\t") for line in sent.read_text().splitlines() if line]
    if not rows:
        return np.zeros(0), 0
    t_first = float(rows[0][2])
    timed = all(len(row) > 3 and row[3] for row in rows)
    by_user: dict[str, list[tuple[float, str, float]]] = {}
    for n, row in enumerate(rows):
        event_ts = float(row[3]) if timed else float(n)
        by_user.setdefault(row[1], []).append((event_ts, row[0], float(row[2])))
    latencies: list[float] = []
    unanswered = 0
    for events in by_user.values():
        events.sort(key=lambda e: e[0])  # stable: equal event times keep their send order
        carried: list[float] = []  # answers of this user's later events (event time)
        end = len(events)
        while end:
            start = end
            while start and events[start - 1][0] == events[end - 1][0]:
                start -= 1
            group = events[start:end]  # one event time, newest first overall
            carried += [received[e] for _, e, _ in group if e in received]
            for _, _, at in group:
                if at - t_first < WARMUP_S:
                    continue
                after = [got for got in carried if got >= at]
                if after:
                    latencies.append((min(after) - at) * 1000.0)
                else:
                    unanswered += 1
            end = start
    return np.asarray(latencies), unanswered


def read_probe(log: Path) -> dict[str, float]:
    """trigger event id → first arrival at the probe."""
    received: dict[str, float] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                received.setdefault(parts[0], float(parts[2]))
    return received


def summarize(latencies: np.ndarray, unanswered: int) -> dict[str, Any]:
    if latencies.size == 0:
        return {"events": 0, "unanswered": unanswered}
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]).tolist()
    return {
        "events": int(latencies.size),
        "unanswered": unanswered,
        "p50": round(p50, 2),
        "p95": round(p95, 2),
        "p99": round(p99, 2),
        "max": round(float(latencies.max()), 2),
        "mean": round(float(latencies.mean()), 2),
    }
