"""How `catalog` and `stock` messages change a catalog: one rule set for workers and evaluator.

A worker's replica and the offline evaluator both feed item messages through ``ItemFeed``, so an
offline figure never rests on different item rules than the worker runs. The subtle rules:

* a stock message may arrive before its item's catalog entry (separate topics, no order between
  them); it is held and applied when the entry arrives instead of being lost;
* the latest stock message by event time (``ts``) wins, not the latest to arrive: Kafka keeps one
  item's messages in the order they were produced, but two systems that both publish stock (a
  warehouse and a shop front), or a producer's late retry, can deliver an older level after a
  newer one. Applied, "out of stock" at 10:00 arriving after "5 left" at 10:05 would hide an
  available item until its next stock message. An older one is skipped and counted
  (``stale_stock``); one of the same ``ts`` is applied (arrival order breaks the tie). Every
  worker re-reads `stock` from its beginning at start, so each one skips the same messages. A
  worker's replica first takes a ``ts`` far ahead of its record back to the record's time
  (``bounded_time``, as for catalog entries): a clock set hours ahead would otherwise make one
  level outrank every later one of its item for hours.

A catalog message that deletes a shown item is reported like a stock-out (``Applied`` of kind
"catalog"), and one that restores it like a restock: for the lists that hold the item the two
are the same, so the worker refreshes its holders either way.

A catalog message that repeats the item's last one (but for its ``ts`` and ``event_id``) changes
nothing and is skipped (``unchanged``): full catalog dumps re-send mostly unchanged items, and
each applied message costs the replica its upsert, the Pfeed re-embedding and every cached top
list (measured: re-publishing the demo's 23,652 products stalled user lists for ~15 s).

A catalog message dated far ahead of when it was published has its ``ts`` taken back to its
record's timestamp (``bounded_time``) before it is applied: an item's first ``ts`` is its
freshness date, and freshness is 1 until that date, so one entry dated a year ahead (a clock
set wrong, microseconds sent for milliseconds) would be "new" for a year.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from stream.domain.catalog import Catalog, StockChange


@dataclass(frozen=True, slots=True)
class Applied:
    """One change to whether an item may be shown, with the message that caused it: a stock
    message (``kind`` "stock"), or a catalog entry that deleted or restored an item
    (``kind`` "catalog"; its ``message`` then names the entry: event id, item id, ts)."""

    change: StockChange
    message: Mapping[str, Any]
    kind: str = "stock"


@dataclass
class ItemFeed:
    catalog: Catalog
    #: item_id -> the latest stock message seen before the item's catalog entry
    pending_stock: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    #: per item index: a 64-bit fingerprint of its last catalog message (0: none)
    _prints: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=np.uint64))

    #: the message ``unchanged`` last fingerprinted, and its print (``apply`` reuses it)
    _last: tuple[Mapping[str, Any] | None, np.uint64] = (None, np.uint64(0))
    #: per item index: the ``ts`` of its latest applied stock message (-1: none yet)
    _stock_ts: np.ndarray = field(default_factory=lambda: np.full(1024, -1, dtype=np.int64))
    #: stock messages skipped because a later one (by ``ts``) was already applied or held
    stale_stock: int = 0

    def unchanged(self, message: Mapping[str, Any]) -> bool:
        """Is this catalog message the item's last one again (``ts``/``event_id`` aside)?"""
        idx = self.catalog.index.get(str(message["item_id"]))
        if idx is None or idx >= self._prints.size:
            return False
        fingerprint = _print(message)
        self._last = (message, fingerprint)
        return bool(self._prints[idx] == fingerprint)

    def _print_of(self, message: Mapping[str, Any]) -> np.uint64:
        last, fingerprint = self._last
        self._last = (None, np.uint64(0))
        return fingerprint if last is message else _print(message)

    def apply(self, kind: str, message: Mapping[str, Any]) -> list[Applied]:
        """Apply one validated message ("catalog" or "stock"); the stock changes it caused."""
        if kind == "catalog":
            known = self.catalog.index.get(str(message["item_id"]))
            shown = known is not None and self.catalog.is_eligible(known)
            idx = self.catalog.upsert(message)
            self._prints = _room_for(self._prints, idx, 0)
            self._prints[idx] = self._print_of(message)
            held = self.pending_stock.pop(str(message["item_id"]), None)
            deleted = [] if known is None else self._deletion(idx, shown, message)
            return deleted + ([] if held is None else self.apply("stock", held))
        if kind != "stock":
            raise ValueError(f"not an item message kind: {kind!r}")
        return self._stock(message)

    def _deletion(self, idx: int, shown: bool, message: Mapping[str, Any]) -> list[Applied]:
        """A known item's entry that deleted it (or restored it): for the lists that hold it,
        the same as going out of stock (or coming back), so its holders are refreshed too."""
        now = self.catalog.is_eligible(idx)
        if now == shown:
            return []
        item_id = str(message["item_id"])
        cause = {
            "event_id": str(message.get("event_id") or f"catalog:{item_id}"),
            "item_id": item_id,
            "ts": _ts(message),
        }
        return [Applied(StockChange(idx, shown, now), cause, kind="catalog")]

    def _stock(self, message: Mapping[str, Any]) -> list[Applied]:
        item_id, ts = str(message["item_id"]), _ts(message)
        idx = self.catalog.index.get(item_id)
        if idx is None:
            held = self.pending_stock.get(item_id)
            held_ts = None if held is None else _ts(held)
            if ts is not None and held_ts is not None and ts < held_ts:
                self.stale_stock += 1
                return []
            self.pending_stock[item_id] = message
            return []
        if ts is not None and idx < self._stock_ts.size and ts < self._stock_ts[idx]:
            self.stale_stock += 1
            return []
        change = self.catalog.set_stock(item_id, int(message["available"]))
        assert change is not None  # the index above knows the item
        if ts is not None:
            self._stock_ts = _room_for(self._stock_ts, idx, -1)
            self._stock_ts[idx] = ts
        return [Applied(change, message)]


def _room_for(values: np.ndarray, idx: int, fill: int) -> np.ndarray:
    """``values``, or a copy doubled (at least to ``idx + 1``) and padded with ``fill``."""
    if idx < values.size:
        return values
    grown = np.full(max(idx + 1, 2 * values.size), fill, dtype=values.dtype)
    grown[: values.size] = values
    return grown


def _ts(message: Mapping[str, Any]) -> int | None:
    """A stock message's event time (validated messages always have one; the evaluator's
    derived ones may not, and are then applied in arrival order)."""
    ts = message.get("ts")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None


_VOLATILE = ("ts", "event_id")


def bounded_time(
    message: Mapping[str, Any], published_ms: int | None, limit_ms: int
) -> Mapping[str, Any]:
    """``message``, or a copy with ``ts`` set to ``published_ms`` when it is more than
    ``limit_ms`` ahead of it (``limit_ms`` 0 or no record timestamp: unchanged).

    Why the record's timestamp and not the worker's clock, as user events also use: every
    worker's replica re-reads `catalog` from the beginning after a restart, and an item's
    freshness must come out the same on every worker and every replay; the clock would give
    another answer each time. Why taken back and not dead-lettered: the entry itself (the item,
    its attributes) is good, and refusing it would leave the item unknown to every event that
    names it."""
    ts = message.get("ts")
    if not limit_ms or not published_ms or published_ms <= 0 or not isinstance(ts, int):
        return message
    if ts - published_ms <= limit_ms:
        return message
    return {**message, "ts": published_ms}


def _print(message: Mapping[str, Any]) -> np.uint64:
    """What a catalog message says about its item, as 64 bits (never 0: 0 means none)."""
    body = {k: v for k, v in message.items() if k not in _VOLATILE}
    digest = hashlib.blake2b(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), digest_size=8)
    return np.uint64(int.from_bytes(digest.digest(), "little") or 1)
