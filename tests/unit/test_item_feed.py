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
