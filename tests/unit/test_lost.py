"""What a list lost to the stock, remembered until the item returns (``stream.domain.lost``)."""

from __future__ import annotations

from stream.domain.catalog import Catalog
from stream.domain.lost import MAX_LOST, lost_items


def shop(n: int, out: set[int] = frozenset(), deleted: set[int] = frozenset()) -> Catalog:
    catalog = Catalog()
    for i in range(n):
        catalog.upsert({"item_id": f"i{i}", "title": f"Item {i}", "deleted": i in deleted})
        catalog.set_stock(f"i{i}", 0 if i in out else 3)
    return catalog


def test_items_out_or_deleted_now_are_remembered_newest_first_once_each() -> None:
    catalog = shop(6, out={1, 3}, deleted={2})
    previous = ["i0", "i1", "i2", "gone"]  # "gone": no catalog entry, so it never comes back
    assert lost_items(previous, ["i3", "i1", "i4"], catalog) == ["i1", "i2", "i3"]
    assert lost_items([], [], catalog) == []


def test_an_item_back_is_forgotten_and_the_memory_is_bounded() -> None:
    catalog = shop(200, out=set(range(200)))
    lost = lost_items([f"i{i}" for i in range(100)], [f"i{i}" for i in range(100, 200)], catalog)
    assert lost == [f"i{i}" for i in range(MAX_LOST)]
    catalog.set_stock("i0", 5)
    assert lost_items([], lost, catalog) == lost[1:]
