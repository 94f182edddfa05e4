"""The consumer scheduler that hands a fetch's records over in event time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TP

from stream.adapters.event_time import EventTimeScheduling, in_event_time, scheduling
from stream.adapters.faust_config import faust_config
from stream.settings import Settings


@dataclass(frozen=True)
class Rec:
    offset: int
    timestamp: int | None


def _tps(out: list[tuple[Any, Rec]]) -> list[tuple[str, int]]:
    return [(tp.topic, r.offset) for tp, r in out]


def _fetch(**by_topic: list[Rec]) -> dict[TP, list[Rec]]:
    """A fetch's records: one partition (0) per topic."""
    return {TP(topic, 0): recs for topic, recs in by_topic.items()}


def test_partitions_merge_oldest_first() -> None:
    records = _fetch(
        clicks=[Rec(0, 10), Rec(1, 20), Rec(2, 30), Rec(3, 40)],
        dwell=[Rec(0, 15), Rec(1, 35)],
        carts=[Rec(0, 5), Rec(1, 100)],
    )
    out = _tps(list(in_event_time(records)))
    assert out == [
        ("carts", 0), ("clicks", 0), ("dwell", 0), ("clicks", 1),
        ("clicks", 2), ("dwell", 1), ("clicks", 3), ("carts", 1),
    ]  # fmt: skip


def test_a_partition_keeps_its_order_when_its_timestamps_go_back() -> None:
    # a producer's clock may step back: the partition's order still wins
    records = _fetch(a=[Rec(0, 50), Rec(1, 10), Rec(2, 60)], b=[Rec(0, 20), Rec(1, 55)])
    out = _tps(list(in_event_time(records)))
    assert [o for tp, o in out if tp == "a"] == [0, 1, 2]
    assert [o for tp, o in out if tp == "b"] == [0, 1]
    # a's second record is keyed by the 50 before it: b's 20 goes first
    assert out == [("b", 0), ("a", 0), ("a", 1), ("b", 1), ("a", 2)]


def test_ties_go_by_topic_then_partition_whatever_else_was_fetched() -> None:
    records = _fetch(a=[Rec(0, None), Rec(1, 7), Rec(2, 7)], b=[Rec(0, 7), Rec(1, None)], c=[])
    out = _tps(list(in_event_time(records)))
    assert out == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]
    # a burst sent in one millisecond: by topic name, each topic in offset order
    burst = _fetch(
        orders=[Rec(0, 5), Rec(1, 5)], clicks=[Rec(0, 5), Rec(1, 5), Rec(2, 5)], carts=[Rec(0, 5)]
    )
    want = [("carts", 0), ("clicks", 0), ("clicks", 1), ("clicks", 2), ("orders", 0), ("orders", 1)]
    assert _tps(list(in_event_time(burst))) == want
    # the same records fetched after a restart from other offsets (earlier records of other
    # topics, already handed over, are not there): the same order among them
    later = _fetch(
        clicks=[Rec(0, 5), Rec(1, 5), Rec(2, 5)], orders=[Rec(0, 1), Rec(0, 5), Rec(1, 5)]
    )
    assert [x for x in _tps(list(in_event_time(later)))][1:] == [x for x in want if x[0] != "carts"]
    two = {TP("clicks", 1): [Rec(0, 5)], TP("clicks", 0): [Rec(0, 5)]}
    assert [(tp.partition, r.offset) for tp, r in in_event_time(two)] == [(0, 0), (1, 0)]


def test_one_partition_is_handed_over_as_fetched() -> None:
    recs = [Rec(i, t) for i, t in enumerate([3, 1, 2])]
    assert _tps(list(in_event_time(_fetch(x=recs)))) == [("x", 0), ("x", 1), ("x", 2)]
    assert list(in_event_time({})) == []


def test_the_worker_app_uses_it_and_the_switch_turns_it_off(tmp_path: Any) -> None:
    on = faust_config(Settings(data_dir=tmp_path, batch_max=64), "kafka")
    assert issubclass(on["ConsumerScheduler"], EventTimeScheduling)
    assert on["ConsumerScheduler"].backlog == 128  # two batches
    app = faust.App("recstream-event-time-test", **on, store="memory://")
    assert issubclass(app.conf.ConsumerScheduler, EventTimeScheduling)
    scheduled = app.conf.ConsumerScheduler().iterate(_fetch(a=[Rec(0, 2)], b=[Rec(0, 1)]))
    assert _tps(list(scheduled)) == [("b", 0), ("a", 0)]
    off = Settings.from_env(
        {"RECSTREAM_EVENT_TIME_ORDER": "0", "RECSTREAM_DATA_DIR": str(tmp_path)}
    )
    assert off.event_time_order is False
    assert "ConsumerScheduler" not in faust_config(off, "kafka")
    across = Settings.from_env(
        {"RECSTREAM_BACKLOG_BY_PARTITION": "0", "RECSTREAM_DATA_DIR": str(tmp_path)}
    )
    assert faust_config(across, "kafka")["ConsumerScheduler"].backlog is None


def _backlog() -> dict[TP, list[Rec]]:
    """Two co-partitioned topics, partitions 0 and 1, times interleaved across partitions."""
    return {
        TP("clicks", 0): [Rec(0, 10), Rec(1, 30), Rec(2, 50)],
        TP("clicks", 1): [Rec(0, 20), Rec(1, 40)],
        TP("carts", 0): [Rec(0, 30), Rec(1, 60)],
        TP("carts", 1): [Rec(0, 5)],
    }


def _coords(out: list[tuple[Any, Rec]]) -> list[tuple[str, int, int]]:
    return [(tp.topic, tp.partition, r.offset) for tp, r in out]


def test_a_backlog_goes_partition_by_partition_each_in_event_time() -> None:
    fetch = _backlog()  # 8 records
    across = _coords(list(in_event_time(fetch, backlog=8)))  # not more than 8: event time
    assert across == [
        ("carts", 1, 0), ("clicks", 0, 0), ("clicks", 1, 0), ("carts", 0, 0),
        ("clicks", 0, 1), ("clicks", 1, 1), ("clicks", 0, 2), ("carts", 0, 1),
    ]  # fmt: skip
    runs = _coords(list(in_event_time(fetch, backlog=7)))  # runs of 7 // 2 = 3 records
    assert runs == [
        ("clicks", 0, 0), ("carts", 0, 0), ("clicks", 0, 1),
        ("carts", 1, 0), ("clicks", 1, 0), ("clicks", 1, 1),
        ("clicks", 0, 2), ("carts", 0, 1),
    ]  # fmt: skip
    turns = _coords(list(in_event_time(fetch, backlog=2)))  # runs of one record
    assert [c[1] for c in turns] == [0, 1, 0, 1, 0, 1, 0, 0]
    whole = _coords(list(in_event_time(fetch, backlog=7 * 2 + 1)))  # more than was fetched
    assert whole == across
    # a user's records all sit in one partition number: their order is the same either way
    for partition in (0, 1):
        mine = [c for c in across if c[1] == partition]
        assert [c for c in runs if c[1] == partition] == mine
        assert [c for c in turns if c[1] == partition] == mine
    assert _coords(list(in_event_time(fetch))) == across  # no threshold: never by partition


def test_the_scheduler_class_carries_its_threshold() -> None:
    fetch = _backlog()
    assert list(scheduling(7)().iterate(fetch)) == list(in_event_time(fetch, backlog=7))
    assert list(scheduling(None)().iterate(fetch)) == list(in_event_time(fetch))
    assert EventTimeScheduling.backlog is None
