"""How `catalog` and `stock` messages change a catalog: one rule set for workers and evaluator.

A worker's replica and the offline evaluator both feed item messages through ``ItemFeed``, so an
offline figure never rests on different item rules than the worker runs. The one subtle rule:
a stock message may arrive before its item's catalog entry (separate topics, no order between
them); it is held and applied when the entry arrives instead of being lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stream.domain.catalog import Catalog, StockChange


@dataclass(frozen=True, slots=True)
class Applied:
    """One stock change a message caused, with the stock message that caused it."""

    change: StockChange
    message: Mapping[str, Any]


@dataclass
class ItemFeed:
    catalog: Catalog
    #: item_id -> the latest stock message seen before the item's catalog entry
    pending_stock: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def apply(self, kind: str, message: Mapping[str, Any]) -> list[Applied]:
        """Apply one validated message ("catalog" or "stock"); the stock changes it caused."""
        if kind == "catalog":
            self.catalog.upsert(message)
            held = self.pending_stock.pop(str(message["item_id"]), None)
            return [] if held is None else self.apply("stock", held)
        if kind != "stock":
            raise ValueError(f"not an item message kind: {kind!r}")
        item_id = str(message["item_id"])
        change = self.catalog.set_stock(item_id, int(message["available"]))
        if change is None:
            self.pending_stock[item_id] = message
            return []
        return [Applied(change, message)]
