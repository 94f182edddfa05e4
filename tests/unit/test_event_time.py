"""The consumer scheduler that hands a fetch's records over in event time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from stream.adapters.event_time import EventTimeScheduling, in_event_time
from stream.adapters.faust_config import faust_config
from stream.settings import Settings


@dataclass(frozen=True)
class Rec:
    offset: int
    timestamp: int | None


def _tps(out: list[tuple[Any, Rec]]) -> list[tuple[str, int]]:
    return [(tp, r.offset) for tp, r in out]


def test_partitions_merge_oldest_first() -> None:
    records = {
        "clicks-0": [Rec(0, 10), Rec(1, 20), Rec(2, 30), Rec(3, 40)],
        "dwell-0": [Rec(0, 15), Rec(1, 35)],
        "carts-0": [Rec(0, 5), Rec(1, 100)],
    }
    out = _tps(list(in_event_time(records)))
    assert out == [
        ("carts-0", 0), ("clicks-0", 0), ("dwell-0", 0), ("clicks-0", 1),
        ("clicks-0", 2), ("dwell-0", 1), ("clicks-0", 3), ("carts-0", 1),
    ]  # fmt: skip


def test_a_partition_keeps_its_order_when_its_timestamps_go_back() -> None:
    # a producer's clock may step back: the partition's order still wins
    records = {"a": [Rec(0, 50), Rec(1, 10), Rec(2, 60)], "b": [Rec(0, 20), Rec(1, 55)]}
    out = _tps(list(in_event_time(records)))
    assert [o for tp, o in out if tp == "a"] == [0, 1, 2]
    assert [o for tp, o in out if tp == "b"] == [0, 1]
    # a's second record is keyed by the 50 before it: b's 20 goes first
    assert out == [("b", 0), ("a", 0), ("a", 1), ("b", 1), ("a", 2)]


def test_ties_and_missing_timestamps_keep_fetch_order() -> None:
    records = {
        "a": [Rec(0, None), Rec(1, 7), Rec(2, 7)],
        "b": [Rec(0, 7), Rec(1, None)],
        "c": [],
    }
    out = _tps(list(in_event_time(records)))
    assert out == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
    assert len(out) == sum(len(v) for v in records.values())


def test_one_partition_is_handed_over_as_fetched() -> None:
    recs = [Rec(i, t) for i, t in enumerate([3, 1, 2])]
    assert _tps(list(in_event_time({"x": recs}))) == [("x", 0), ("x", 1), ("x", 2)]
    assert list(in_event_time({})) == []


def test_the_worker_app_uses_it_and_the_switch_turns_it_off(tmp_path: Any) -> None:
    on = faust_config(Settings(data_dir=tmp_path), "kafka")
    assert on["ConsumerScheduler"] is EventTimeScheduling
    app = faust.App("recstream-event-time-test", **on, store="memory://")
    assert app.conf.ConsumerScheduler is EventTimeScheduling
    scheduled = app.conf.ConsumerScheduler().iterate({"a": [Rec(0, 2)], "b": [Rec(0, 1)]})
    assert _tps(list(scheduled)) == [("b", 0), ("a", 0)]
    off = Settings.from_env(
        {"RECSTREAM_EVENT_TIME_ORDER": "0", "RECSTREAM_DATA_DIR": str(tmp_path)}
    )
    assert off.event_time_order is False
    assert "ConsumerScheduler" not in faust_config(off, "kafka")
