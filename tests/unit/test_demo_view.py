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


def test_the_search_demo_filters_the_latest_shopper_to_another_brand() -> None:
    facts = {"i1": ("CHEESE", "National"), "i2": ("CHEESE", "Private"), "i3": ("MILK", "Private")}
    view = LiveView({}, facts)
    assert view.plan_search(ts=5, tag=1) is None  # no list yet: nobody to search for
    view.on_message(_list(10))  # u1's list: i1 (National) first
    planned = view.plan_search(ts=5, tag=1)
    assert planned is not None
    event, text = planned
    assert event == {
        "event_id": "demo-search-u1-1",
        "user_id": "u1",
        "ts": 5,
        "query": "CHEESE",
        "filters": {"brand": "Private"},
    }
    assert "u1 searches 'CHEESE' filtered to brand Private" in text
    assert view.searched == {"u1": ("Private", 0.0)}
    after = {
        "user_id": "u1",
        "items": [{"item_id": i, "reasons": ["matches your filters"]} for i in ("i2", "i3", "i1")],
        "trigger": {"topic": "searches"},
    }
    view.on_message(after)
    assert view.searched == {}  # reported once
    assert view.brand_share(["i2", "i3", "i1"], "Private") == 2 / 3
    one_brand = LiveView({}, {"i1": ("CHEESE", "National")})
    one_brand.on_message(_list(10))
    assert one_brand.plan_search(ts=5, tag=1) is None


def test_the_stock_demo_takes_the_most_shown_item_out_then_brings_it_back() -> None:
    view = LiveView({"i1": "CHEESE"})
    assert view.plan_stock(ts=5, tag=1) is None  # nothing shown yet
    view.on_message(_list(10))  # i1 shown
    out = view.plan_stock(ts=5, tag=1)
    assert out is not None
    assert out[0] == {"event_id": "demo-stock-i1-1", "item_id": "i1", "ts": 5, "available": 0}
    assert "'CHEESE' (i1) goes out of stock" in out[1]
    back = view.plan_stock(ts=9, tag=2)
    assert back is not None
    assert back[0] == {"event_id": "demo-stock-i1-2", "item_id": "i1", "ts": 9, "available": 5}
    assert "'CHEESE' (i1) is back in stock" in back[1]
    assert view.plan_stock(ts=9, tag=3) is None  # the only item shown was taken out once
