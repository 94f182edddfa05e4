"""The "new items" segment: first seen learned from the stream, scored on new targets only."""

from __future__ import annotations

from typing import Any

from stream.domain.ranking import RankingProfile
from stream.evaluation.new_items import DAY_MS, NewItemScores, markdown
from stream.evaluation.prequential import EvalConfig, evaluate


def test_new_targets_follow_first_seen_in_stream_order() -> None:
    scores = NewItemScores(k=2, window_days=14)
    scores.observe({"topic": "catalog", "item_id": "old", "ts": 0})
    scores.observe({"topic": "catalog", "item_id": "drop", "ts": 20 * DAY_MS})
    scores.observe({"topic": "catalog", "item_id": "gone", "ts": 0, "deleted": True})
    now = 30 * DAY_MS
    # "drop" is 10 days old, "old" 30, "never" was not seen before the purchase (age 0)
    assert scores.new_targets({"old", "drop", "never"}, now) == {"drop", "never"}
    assert scores.new_targets({"old"}, now) == set()
    # a later message does not make an item younger; an earlier one makes it older
    scores.observe({"topic": "clicks", "item_id": "drop", "user_id": "u", "ts": 25 * DAY_MS})
    scores.observe({"topic": "orders", "user_id": "u", "ts": 1, "items": [{"item_id": "drop"}]})
    assert scores.new_targets({"drop"}, now) == set()
    assert (scores.orders, scores.lines, scores.new_lines) == (3, 5, 2)


def test_scores_lists_against_new_items_only() -> None:
    scores = NewItemScores(k=2)
    scores.add("m", ["a", "b"], {"b", "c"})  # one of two new items in the top 2
    scores.add("m", ["a", "b"], set())  # no new item bought: not scored
    scores.add("m", ["c", "x"], {"c"})
    cell = scores.summary(catalog_size=5, popularity={})["methods"]["m"]
    assert cell["n"] == 2
    assert abs(cell["recall@2"] - 0.75) < 1e-12
    assert cell["hit_rate@2"] == 1.0


def _shop() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    catalog = [{"item_id": f"i{n}", "ts": 0, "title": f"Item {n}"} for n in range(6)]
    events: list[dict[str, Any]] = [
        {"topic": "catalog", "item_id": "i9", "ts": 40 * DAY_MS, "title": "Item nine"}
    ]
    for day in range(1, 60):
        item = "i9" if day > 40 and day % 2 else f"i{day % 6}"
        events.append({"topic": "orders", "event_id": f"o{day}", "user_id": f"u{day % 3}",
                       "ts": day * DAY_MS, "items": [{"item_id": item}]})  # fmt: skip
    return catalog, events


def test_the_report_has_the_segment_and_its_section() -> None:
    catalog, events = _shop()
    cfg = EvalConfig("tiny", ranking=RankingProfile(size=10), progress=False)
    cfg.pfeed = False
    report = evaluate(catalog, events, cfg)
    section = report["new_items"]
    # scored orders are the second half (days 30..59); new: i9 bought on odd days 41..53 (< 14 d)
    assert section["scored_orders"] == report["data"]["evaluated_targets"]
    assert section["new_lines"] == len([d for d in range(41, 54) if d % 2])
    assert set(section["methods"]) == set(report["methods"])
    text = "\n".join(markdown(report))
    assert "## New items" in text and "`engine_realtime`" in text
