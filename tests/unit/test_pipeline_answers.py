"""Which event a coalesced list answers, and from when its latency is counted."""

from __future__ import annotations

from typing import Any

import orjson

from stream.plan import Record
from tests.unit.test_erasure import T0, Worker


def record(topic: str, offset: int, at: int, **fields: Any) -> Record:
    """A user event with event time and broker receive time both ``T0 + at``."""
    body = {"event_id": f"{topic}{offset}", "user_id": "u1", "ts": T0 + at, **fields}
    return Record(topic, 0, offset, b"u1", orjson.dumps(body), T0 + at)


def test_a_list_names_the_newest_event_and_counts_latency_from_the_newest_record() -> None:
    w = Worker()
    # fetch order put the user's order (sent last) before the click (sent first)
    order = record("orders", 1, 900, items=[{"item_id": "i1"}])
    w.batch(order, record("clicks", 2, 100, item_id="i2"))
    lists = [orjson.loads(v) for t, v in w.sent if t == "recommendations" and v]
    assert lists and {m["trigger"]["event_id"] for m in lists} == {"orders1"}
    # emitted now (wall clock, long after T0): the latency counts from the order's arrival
    assert all(m["emitted_at"] - m["latency_ms"] == T0 + 900 for m in lists)
