"""Shadow scoring and next-interaction hits, pure: no topics, no metrics.

A shadow profile is ranked for the same user, state and moment as the live one, on the same
read models, and never written anywhere a user sees (not into ``UserProfile.last_items``).

To know whether the user's *next* interaction hit the list they were shown (live, and what the
shadow would have shown), a worker remembers each user's last lists in memory (``ShownLists``),
not in the stored profile: the shadow is an experiment that comes and goes, its lists must not
bloat every profile and its changelog, and what a restart or rebalance loses is a few samples of
a running comparison, for both rankings alike. The memory is bounded (least recently updated
users are dropped first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from stream.domain.engine import Engine, Recommendation
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile, rank_feeds

#: Lists compared and hits counted on their top this many items.
K = 10
#: Interactions that say "the user wanted this item" (a dwell follows its click: not twice).
_INTERACTIONS = {"clicks", "orders"}
_CART_ACTIONS = {"add", "favorite"}


@dataclass(frozen=True, slots=True)
class Shown:
    """The last for_you lists of one user: the live one (its profile label and variant) and,
    if a shadow was scored at the same moment, the shadow's."""

    profile: str
    variant: str
    items: tuple[str, ...]
    shadow: str | None = None
    shadow_items: tuple[str, ...] = ()


class ShownLists:
    """user_id -> Shown, at most ``capacity`` users (least recently updated dropped first)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._by_user: OrderedDict[str, Shown] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_user)

    def get(self, user_id: str) -> Shown | None:
        return self._by_user.get(user_id)

    def put(self, user_id: str, shown: Shown) -> None:
        self._by_user[user_id] = shown
        self._by_user.move_to_end(user_id)
        while len(self._by_user) > self.capacity:
            self._by_user.popitem(last=False)

    def drop(self, user_id: str) -> None:
        self._by_user.pop(user_id, None)


def next_interaction(events: Sequence[UserEvent]) -> tuple[str, ...] | None:
    """Items of the first interaction in a user's burst (the one that follows the last list
    shown; later events of the burst follow lists the user never saw)."""
    for event in events:
        if not event.item_ids:
            continue
        if event.topic in _INTERACTIONS or (
            event.topic == "carts" and event.action in _CART_ACTIONS
        ):
            return event.item_ids
    return None


def shadow_lists(
    engine: Engine,
    profile: UserProfile,
    live: Sequence[Recommendation],
    ranking: RankingProfile,
    variant: str,
) -> list[Recommendation]:
    """What ``ranking`` would have shown instead of each live list (same feeds, trigger, state
    version and moment, one scored candidate set like the live ranking); leaves the profile
    untouched."""
    if not live:
        return []
    trigger = live[0].trigger
    # the moment the live lists were ranked at (``Engine.step`` / the stock refresh)
    moment = trigger.ts if trigger.topic != "stock" else 0
    lists = rank_feeds(
        profile,
        engine.catalog,
        engine.relations,
        ranking,
        float(max(profile.last_ts, moment)),
        [rec.feed for rec in live],
        engine.profile_config,
        learned=engine.repeats,
        trending=engine.trending,
    )
    return [
        Recommendation(
            rec.user_id,
            rec.feed,
            lists[rec.feed],
            ranking.label,
            variant,
            rec.trigger,
            rec.state_version,
        )
        for rec in live
    ]
