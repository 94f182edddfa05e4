"""The prequential protocol itself: no leakage, batch staleness, freshness accounting."""

from __future__ import annotations

from typing import Any

from stream.domain.ranking import RankingProfile
from stream.evaluation.methods import EngineMethod
from stream.evaluation.prequential import EvalConfig, evaluate

HOUR = 3600 * 1000
DAY = 24 * HOUR


def catalog() -> list[dict[str, Any]]:
    items = []
    for i in range(40):
        group = "boots" if i < 10 else ("lamps" if i < 20 else f"misc{i % 4}")
        items.append(
            {
                "topic": "catalog",
                "item_id": f"i{i}",
                "ts": 0,
                "attributes": {"category": [group], "brand": f"b{i % 3}"},
            }
        )
    return items


def order(eid: str, user: str, ts: int, *items: str) -> dict[str, Any]:
    return {
        "topic": "orders",
        "event_id": eid,
        "user_id": user,
        "ts": ts,
        "items": [{"item_id": i} for i in items],
    }


def click(eid: str, user: str, ts: int, item: str) -> dict[str, Any]:
    return {"topic": "clicks", "event_id": eid, "user_id": user, "ts": ts, "item_id": item}


def test_target_is_never_visible_before_it_is_scored() -> None:
    """A user buys an item nobody ever touched, sharing no feature with anything they did and
    last in the catalog (so it loses every tie): only a leaking evaluator could score a hit."""
    events = [click(f"c{n}", "u1", n * HOUR, f"i{20 + n}") for n in range(10)]
    events.append(order("o1", "u1", 11 * HOUR, "fresh"))
    fresh = {"topic": "catalog", "item_id": "fresh", "ts": 0, "attributes": {"category": ["tents"]}}
    rp = RankingProfile(size=10)
    report = evaluate(
        [*catalog(), fresh], events, EvalConfig("synthetic", warmup=0.0, ranking=rp, progress=False)
    )
    for name, segments in report["methods"].items():
        assert segments["all"]["hit_rate@10"] == 0.0, name


def test_batch_engine_misses_what_happened_since_its_last_refresh() -> None:
    """Many shoppers buy boots together; our user views boots an hour before buying one.
    The real-time engine has seen the views, the 24-hour batch has not."""
    events: list[dict[str, Any]] = []
    t = 10 * DAY
    for u in range(30):  # others establish boots co-occurrence and popularity of lamps
        events.append(order(f"b{u}", f"other{u}", t + u * 1000, "i1", "i2", "i3"))
        events.append(order(f"l{u}", f"other{u}", t + u * 1000 + 500, "i11", "i12"))
    t = 12 * DAY + 2 * HOUR
    events.append(order("lamp", "me", t - 10 * HOUR, "i13"))
    events += [click("v1", "me", t, "i1"), click("v2", "me", t + 60_000, "i2")]
    events.append(order("buy", "me", t + HOUR, "i3"))
    rp = RankingProfile(size=10, w_repeat=0.0)
    report = evaluate(
        catalog(),
        events,
        EvalConfig("synthetic", warmup=(len(events) - 1) / len(events), ranking=rp, progress=False),
    )
    methods = report["methods"]
    assert methods["engine_realtime"]["all"]["hit_rate@10"] == 1.0
    assert methods["engine_batch_24h"]["all"]["hit_rate@10"] == 0.0
    # the user's previous event (a view, 59 min before the purchase) lies after the last 24 h
    # boundary (stale daily list) but before the last 2 min boundary (a 2-min batch saw it)
    assert report["freshness"]["share_prev_event_since_refresh"] == {"86400": 1.0, "120": 0.0}


def test_batch_engine_applies_pending_events_at_refresh_boundaries() -> None:
    method = EngineMethod("b", RankingProfile(), refresh_ms=DAY)
    for message in catalog():
        method.observe(message)
    method.observe(click("c1", "u", DAY + 5, "i1"))
    assert "u" not in method.profiles  # still pending inside the same day
    method.recommend("u", DAY + 10, 10)
    assert "u" not in method.profiles
    method.recommend("u", 2 * DAY + 1, 10)  # crossing midnight runs the batch
    assert method.profiles["u"].events == 1
