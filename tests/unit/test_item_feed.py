"""ItemFeed: the one way catalog and stock messages change a catalog (worker and evaluator)."""

from __future__ import annotations

import pytest

from stream.domain.catalog import Catalog
from stream.domain.item_feed import ItemFeed


def entry(item_id: str) -> dict[str, object]:
    return {"event_id": f"c-{item_id}", "item_id": item_id, "ts": 1, "title": item_id}


def stock(item_id: str, available: int) -> dict[str, object]:
    return {
        "event_id": f"s-{item_id}-{available}",
        "item_id": item_id,
        "ts": 2,
        "available": available,
    }


def test_stock_before_its_catalog_entry_is_held_then_applied() -> None:
    feed = ItemFeed(Catalog())
    assert feed.apply("stock", stock("a", 0)) == []
    assert feed.apply("stock", stock("a", 3)) == []  # the latest one wins
    (applied,) = feed.apply("catalog", entry("a"))
    assert applied.message == stock("a", 3)
    assert int(feed.catalog.available[feed.catalog.index["a"]]) == 3
    assert feed.pending_stock == {}


def test_stock_changes_report_items_going_out_and_coming_back() -> None:
    feed = ItemFeed(Catalog())
    feed.apply("catalog", entry("a"))
    (out,) = feed.apply("stock", stock("a", 0))
    assert out.change.went_out and not out.change.came_back
    (back,) = feed.apply("stock", stock("a", 5))
    assert back.change.came_back and not back.change.went_out


def test_other_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="not an item message"):
        ItemFeed(Catalog()).apply("clicks", entry("a"))


def test_a_repeated_catalog_entry_is_unchanged_whatever_its_time_and_id() -> None:
    feed = ItemFeed(Catalog())
    first = {**entry("a"), "attributes": {"brand": "acme"}}
    assert not feed.unchanged(first)  # an unknown item is always news
    feed.apply("catalog", first)
    assert feed.unchanged({**first, "ts": 99, "event_id": "again"})
    assert not feed.unchanged({**first, "title": "renamed"})
    assert not feed.unchanged({**first, "attributes": {"brand": "other"}})
    assert not feed.unchanged({**first, "deleted": True})
    feed.apply("catalog", {**first, "title": "renamed"})  # the latest applied one counts
    assert not feed.unchanged(first)
    assert feed.unchanged({**first, "title": "renamed", "ts": 5})


def test_fingerprints_follow_a_growing_catalog() -> None:
    feed = ItemFeed(Catalog(capacity=2))
    for i in range(3000):  # past the first fingerprint array
        feed.apply("catalog", entry(f"i{i}"))
    assert all(feed.unchanged(entry(f"i{i}")) for i in range(0, 3000, 97))
    assert not feed.unchanged({**entry("i2999"), "title": "x"})


def test_apply_reuses_the_print_of_the_message_just_checked_and_only_that_one() -> None:
    feed = ItemFeed(Catalog())
    feed.apply("catalog", entry("a"))
    feed.apply("catalog", entry("b"))
    renamed = {**entry("a"), "title": "new a"}
    assert not feed.unchanged(renamed)
    feed.apply("catalog", renamed)  # the print just computed, recorded for "a"
    assert feed.unchanged({**renamed, "ts": 9})
    assert not feed.unchanged(entry("a"))
    # a check of one message, then the apply of another: the other's own print is recorded
    assert not feed.unchanged({**entry("b"), "title": "checked, never applied"})
    other = {**entry("b"), "title": "applied"}
    feed.apply("catalog", other)
    assert feed.unchanged(other)
    assert not feed.unchanged({**entry("b"), "title": "checked, never applied"})


def stock_at(item_id: str, available: int, ts: int) -> dict[str, object]:
    return {**stock(item_id, available), "event_id": f"s-{item_id}-{ts}", "ts": ts}


def test_the_latest_stock_level_by_event_time_wins_not_the_latest_to_arrive() -> None:
    feed = ItemFeed(Catalog())
    feed.apply("catalog", entry("a"))
    idx = feed.catalog.index["a"]
    assert feed.apply("stock", stock_at("a", 5, ts=200))  # 5 left at t=200
    assert feed.apply("stock", stock_at("a", 0, ts=100)) == []  # an older "out" arrives late
    assert int(feed.catalog.available[idx]) == 5 and feed.stale_stock == 1
    (same,) = feed.apply("stock", stock_at("a", 0, ts=200))  # same time: arrival order
    assert same.change.went_out and int(feed.catalog.available[idx]) == 0
    (back,) = feed.apply("stock", stock_at("a", 2, ts=300))
    assert back.change.came_back and feed.stale_stock == 1


def test_a_held_stock_level_is_not_replaced_by_an_older_one() -> None:
    feed = ItemFeed(Catalog())
    assert feed.apply("stock", stock_at("a", 0, ts=300)) == []
    assert feed.apply("stock", stock_at("a", 7, ts=100)) == []  # older: skipped, not held
    assert feed.stale_stock == 1
    (applied,) = feed.apply("catalog", entry("a"))
    assert applied.message["ts"] == 300 and int(feed.catalog.available[0]) == 0
    assert feed.apply("stock", stock_at("a", 7, ts=299)) == [] and feed.stale_stock == 2


def test_stock_times_are_kept_for_a_catalog_of_any_size() -> None:
    feed = ItemFeed(Catalog())
    for i in range(1500):  # past the first 1,024 slots
        feed.apply("catalog", entry(f"i{i}"))
    assert feed.apply("stock", stock_at("i1400", 0, ts=50))
    assert feed.apply("stock", stock_at("i1400", 3, ts=49)) == []
    assert int(feed.catalog.available[feed.catalog.index["i1400"]]) == 0


def test_a_stock_message_without_a_time_is_applied_in_arrival_order() -> None:
    feed = ItemFeed(Catalog())
    feed.apply("catalog", entry("a"))
    feed.apply("stock", stock_at("a", 4, ts=500))
    untimed = {k: v for k, v in stock("a", 0).items() if k != "ts"}
    (applied,) = feed.apply("stock", untimed)  # (the evaluator's derived ones may lack ts)
    assert applied.change.went_out and feed.stale_stock == 0


def test_deleting_a_shown_item_acts_on_lists_as_a_stock_out_and_restoring_it_as_a_restock() -> None:
    feed = ItemFeed(Catalog())
    feed.apply("catalog", entry("a"))
    (gone,) = feed.apply("catalog", {**entry("a"), "deleted": True, "event_id": "del-a"})
    assert gone.kind == "catalog"
    assert gone.change.went_out and not gone.change.came_back
    assert gone.change.index == feed.catalog.index["a"]
    assert gone.message == {"event_id": "del-a", "item_id": "a", "ts": 1}
    assert feed.apply("catalog", {**entry("a"), "deleted": True, "title": "x"}) == []  # still gone
    (back,) = feed.apply("catalog", entry("a"))
    assert back.change.came_back and not back.change.went_out and back.kind == "catalog"


def test_a_deletion_changes_nothing_for_lists_when_the_item_was_not_shown() -> None:
    feed = ItemFeed(Catalog())
    assert feed.apply("catalog", {**entry("new"), "deleted": True}) == []  # never shown
    feed.apply("catalog", entry("a"))
    feed.apply("stock", stock("a", 0))
    assert feed.apply("catalog", {**entry("a"), "deleted": True}) == []  # already out
    assert feed.apply("catalog", entry("a")) == []  # restored, but still out of stock
    (back,) = feed.apply("stock", stock("a", 4))
    assert back.kind == "stock" and back.change.came_back


def test_a_deletion_without_an_event_id_is_named_after_the_item() -> None:
    feed = ItemFeed(Catalog())
    feed.apply("catalog", entry("a"))
    (gone,) = feed.apply("catalog", {"item_id": "a", "ts": 7, "deleted": True})
    assert gone.message == {"event_id": "catalog:a", "item_id": "a", "ts": 7}
