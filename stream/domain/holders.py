"""Which local users currently hold which item: the users to refresh when it goes out of stock."""

from __future__ import annotations

from collections.abc import Sequence


class Holders:
    """Inverted index of the last for_you list per user (bounded by the lists' length)."""

    def __init__(self) -> None:
        self.by_item: dict[str, set[str]] = {}
        self.by_user: dict[str, tuple[str, ...]] = {}

    def update(self, user_id: str, items: Sequence[str]) -> None:
        if user_id in self.by_user:
            self.drop(user_id)
        self.by_user[user_id] = tuple(items)
        by_item = self.by_item
        for item in items:  # (no set built per item to be thrown away, as setdefault did)
            users = by_item.get(item)
            if users is None:
                by_item[item] = {user_id}
            else:
                users.add(user_id)

    def drop(self, user_id: str) -> None:
        """Forget a user entirely (erasure, or the user's partition moved away)."""
        for item in self.by_user.pop(user_id, ()):
            users = self.by_item.get(item)
            if users is not None:
                users.discard(user_id)
                if not users:
                    del self.by_item[item]

    def holding(self, item_id: str) -> list[str]:
        return sorted(self.by_item.get(item_id, ()))
