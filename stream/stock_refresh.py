"""Which local users must get a fresh list because an item in theirs is out of stock, or one
their list lost to the stock is back.

A deleted item counts as out of stock here: ranking never shows either (``ItemFeed`` reports a
deletion as a stock change, caused by its catalog entry).

Two moments ask: a stock-out seen live (its item's holders), and a stock index rebuilt from
storage after a start or a rebalance (every holder of any item out of stock now). The second
one catches the stock-outs nobody acted on: those the replica replayed before the worker was
ready (it was down), and those that came while the users' partitions were moving or not yet
assigned. Ranking never shows an item out of stock, so a list still holding one is stale; once
refreshed, it holds none, and the next rebuild finds nothing to do for that user.

The same two moments ask for the items lists lost (``stream.domain.lost``): a restock (or a
restore) seen live refreshes the users whose lists lost it, and the check after a rebuild
refreshes every user whose lists lost an item that is back now: restocks the replica replayed
while the worker was down, or that came while the users' partitions were moving.

A refresh names the stock event that took the item out, or brought it back (``StockOuts``),
whichever moment sends it, so a reader can tell which stock change a list answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from stream.domain.catalog import Catalog, StockChange
from stream.domain.holders import Holders

#: the stock (or catalog) message a refresh answers: (event id, ts; None: it had none)
Cause = tuple[str, int | None]

#: held items or holders looked at between two yields to the event loop (~1 ms)
CHECK_CHUNK = 2000
#: refresh records handed to the producer between two yields (each send ~10-20 µs)
SEND_CHUNK = 500


class StockOuts:
    """The stock message (event id, ts) that took each item out of stock, while it is out, and
    the one that brought it back, while it is in.

    Bounded by the catalog: an item is in one of the two at most."""

    def __init__(self) -> None:
        #: item → (event id, ts; None: the message had none)
        self.causes: dict[str, Cause] = {}
        self.returns: dict[str, Cause] = {}

    def note(self, item_id: str, change: StockChange, message: Mapping[str, Any]) -> None:
        """``message``: the stock message, or for a deletion what ``ItemFeed`` made of its
        catalog entry (a ``ts`` of None: an offline message without one)."""
        if change.went_out:
            self.causes[item_id] = cause_of(message)
            self.returns.pop(item_id, None)
        elif change.came_back:
            self.causes.pop(item_id, None)
            self.returns[item_id] = cause_of(message)
        elif item_id not in self.causes and item_id not in self.returns:
            # no change, none on record: the first level this replica saw put it in stock. A
            # restock replayed before its item's catalog entry is such a one (the replica
            # holds the latest stock message until then), and names the refresh it causes.
            self.returns[item_id] = cause_of(message)

    def refresh(self, user_id: str, item_id: str, now_ms: int) -> bytes:
        """The `refresh` record asking ``user_id`` for a list as of ``item_id``'s last stock
        change: without it (named after the message that took it out), or with it back (the
        one that brought it back).

        Stamped no later than this worker's clock: a refresh ranks *now*, and one stamped by a
        stock producer whose clock runs ahead would be dead-lettered as ``ts_ahead`` (the
        decoder's check), leaving the item in the list until the user's next event. An item
        out with no stock message on record (none replayed yet) is named by the check itself.
        """
        known = self.causes.get(item_id) or self.returns.get(item_id)
        event_id, ts = known or (f"stock-check:{item_id}", None)
        ts = now_ms if ts is None else min(ts, now_ms)
        body = {"event_id": event_id, "user_id": user_id, "ts": ts, "item_id": item_id}
        return orjson.dumps(body)


def cause_of(message: Mapping[str, Any]) -> Cause:
    """A stock message's (event id, ts), or what ``ItemFeed`` made of a catalog entry's."""
    ts = message.get("ts")
    return str(message["event_id"]), None if ts is None else int(ts)


async def held_out_of_stock(
    holders: Holders, catalog: Catalog, back: bool = False
) -> dict[str, str]:
    """Each user whose indexed list holds an item out of stock (or deleted from the catalog)
    now → the first such item found. ``back``: the items indexed are those lists lost
    (``StockIndex.lost``), and the ones looked for are those eligible again.

    One entry per user: one refresh re-ranks the whole list. Yields to the event loop after
    every ``CHECK_CHUNK`` items or holders looked at (a popular item can have hundreds of
    thousands), so batches keep flowing over a large index."""
    index = catalog.index
    held: dict[str, str] = {}
    work = 0
    for item_id, users in list(holders.by_item.items()):
        idx = index.get(item_id)
        work += 1
        if idx is not None and catalog.is_eligible(idx) == back:
            members = list(users)  # (the set may change while this yields)
            for start in range(0, len(members), CHECK_CHUNK):
                for user_id in members[start : start + CHECK_CHUNK]:
                    held.setdefault(user_id, item_id)
                work += min(CHECK_CHUNK, len(members) - start)
                if work >= CHECK_CHUNK:
                    work = 0
                    await asyncio.sleep(0)
        if work >= CHECK_CHUNK:
            work = 0
            await asyncio.sleep(0)
    return held
