"""Which local users lost an item from their list to a stock-out: the users to refresh when it
comes back.

A stock-out re-ranks the item's holders (``stream.domain.holders``), and their new lists no
longer hold it, so the holders index forgets them. Without this record a restock changed
nothing until each shopper's next event, though the brief's promise is that an item coming
back changes the list within milliseconds, as its going out does. Kept per item from its
stock-out (or deletion) to its return, when the item's waiters get one refresh each.

In memory, like the holders index: a restart loses who lost what before it (those users get
the item back at their next event, as before). ``max_entries`` bounds it: past it, the items
out longest are forgotten first (an item that never comes back would otherwise hold its
waiters for ever), and ``forgotten`` counts the users given up that way.
"""

from __future__ import annotations

from collections.abc import Iterable

#: users waiting, summed over items: 42 B each measured (ids shared with the stock index;
#: ~100 B with ids of their own), so ~40-100 MB at the bound
DEFAULT_MAX_ENTRIES = 1_000_000


class Waiting:
    """item → the local users whose list lost it while it is out."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be at least 0, not {max_entries}")
        self.max_entries = max_entries
        #: in the order the items went out (the oldest first, and first forgotten)
        self.by_item: dict[str, set[str]] = {}
        self.entries = 0
        #: users given up for the bound, over the index's life
        self.forgotten = 0

    def add(self, item_id: str, users: Iterable[str]) -> None:
        """``users`` lost ``item_id`` from their list (it went out, or was deleted)."""
        waiting = self.by_item.get(item_id)
        if waiting is None:
            waiting = self.by_item[item_id] = set()
        before = len(waiting)
        waiting.update(users)
        self.entries += len(waiting) - before
        if not waiting:
            del self.by_item[item_id]
        while self.entries > self.max_entries:
            oldest = next(iter(self.by_item))
            dropped = self.by_item.pop(oldest)
            self.entries -= len(dropped)
            self.forgotten += len(dropped)

    def pop(self, item_id: str) -> set[str]:
        """The users waiting for ``item_id``, no longer waiting (it came back)."""
        users = self.by_item.pop(item_id, set())
        self.entries -= len(users)
        return users

    def drop(self, user_id: str) -> None:
        """Forget a user everywhere (erasure): one look per item out with waiters."""
        for item_id in [i for i, users in self.by_item.items() if user_id in users]:
            users = self.by_item[item_id]
            users.discard(user_id)
            self.entries -= 1
            if not users:
                del self.by_item[item_id]

    def __len__(self) -> int:
        return self.entries
