"""What the prequential evaluation compares: the engine at several refresh intervals, and baselines.

Every method sees the same time-ordered stream through ``observe`` and is asked for a list
through ``recommend`` *before* the event it is scored on is revealed to it.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from stream.domain.engine import Engine
from stream.domain.events import UserEvent, event_from_message
from stream.domain.item_feed import ItemFeed
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, ProfileConfig, UserProfile
from stream.domain.ranking import RankingProfile
from stream.domain.relations import CoOccurrence
from stream.domain.signals import banned_items, returns_of
from stream.settings import USER_TOPICS

if TYPE_CHECKING:
    from stream.evaluation.pfeed import SharedLookup

POSITIVE = {"orders": 1.0}
#: the real-time engine without the Pfeed lookup (added when the evaluation uses one)
NO_PFEED = "engine_realtime_no_pfeed"


class Method(Protocol):
    name: str

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]: ...

    def observe(self, message: dict[str, Any]) -> None: ...


def user_event(message: dict[str, Any]) -> UserEvent | None:
    topic = message["topic"]
    if topic not in USER_TOPICS:
        return None
    return event_from_message(topic, message)


class EngineMethod:
    """The production engine (same pure functions as the workers).

    ``refresh_ms = 0`` is the real-time engine: every event is applied at once. Otherwise the
    engine is a batch job: user events wait until the next refresh boundary (a multiple of
    ``refresh_ms``), where everything pending is applied and lists are recomputed as of that
    boundary — what a shopper of a batch-refreshed shop sees.
    """

    def __init__(
        self,
        name: str,
        ranking: RankingProfile,
        refresh_ms: int = 0,
        profile_config: ProfileConfig = DEFAULT_PROFILE_CONFIG,
        lookup: SharedLookup | None = None,
    ) -> None:
        self.name = name
        self.refresh_ms = refresh_ms
        self.engine = Engine(ranking=ranking, profile_config=profile_config)
        self.items = ItemFeed(self.engine.catalog)
        #: the Pfeed lookup blended into the relations (None: co-occurrence only)
        self.lookup = lookup
        if lookup is not None:
            lookup.attach(self.engine)
        self.profiles: dict[str, UserProfile] = {}
        self.pending: list[UserEvent] = []
        self.epoch = -1
        self.lists: dict[str, list[str]] = {}
        self.skipped_unknown = 0

    def _apply(self, event: UserEvent) -> None:
        if any(i not in self.engine.catalog.index for i in event.item_ids):
            self.skipped_unknown += 1  # the worker would dead-letter it
            return
        profile, _, _ = self.engine.apply(self.profiles.get(event.user_id), event.user_id, [event])
        self.profiles[event.user_id] = profile

    def advance(self, now_ms: int) -> None:
        """Batch variants: cross refresh boundaries up to ``now_ms``."""
        if self.refresh_ms <= 0:
            return
        epoch = now_ms // self.refresh_ms
        if epoch > self.epoch:
            for event in self.pending:
                self._apply(event)
            self.pending.clear()
            self.lists.clear()
            self.epoch = epoch

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        """The list the worker emits for a ``refresh`` of this user at ``now_ms`` (what a shop
        sends when a shopper arrives): ``Engine.step``, exactly as the worker runs it."""
        self.advance(now_ms)
        if self.refresh_ms > 0:
            cached = self.lists.get(user_id)
            if cached is not None:
                return cached[:k]
            now_ms = self.epoch * self.refresh_ms
        state = self.profiles.get(user_id)
        if self.lookup is not None:
            self.lookup.ready()
        refresh = UserEvent("refresh", f"eval-{now_ms}", user_id, now_ms, ())
        result = self.engine.step(state, user_id, [refresh])
        if state is not None:
            self.profiles[user_id] = result.state  # last_items, as the worker stores it
        (rec,) = [r for r in result.recommendations if r.feed == "for_you"]
        items = [r.item_id for r in rec.items]
        if self.refresh_ms > 0:
            self.lists[user_id] = items
        return items[:k]

    def observe(self, message: dict[str, Any]) -> None:
        topic = message["topic"]
        if topic in ("catalog", "stock"):
            self.items.apply(topic, message)  # the worker's replica applies them the same way
            if topic == "catalog" and self.lookup is not None:
                self.lookup.observe_catalog(message, self.engine)
            return
        event = user_event(message)
        if event is None:
            return
        self.advance(event.ts)
        if self.refresh_ms > 0:
            self.pending.append(event)
        else:
            self._apply(event)


class EngineRules:
    """The real-time engine's eligibility rules (``signals.banned_items`` over its profiles and
    learned propensities), so baselines are judged on exactly the items the engine may show."""

    def __init__(self, engine: EngineMethod) -> None:
        self.engine = engine
        self._last: tuple[str, int, set[str]] = ("", -1, set())

    def banned(self, user: str, now_ms: int) -> set[str]:
        if self._last[:2] == (user, now_ms):  # three baselines ask for the same purchase
            return self._last[2]
        profile = self.engine.profiles.get(user)
        if profile is None:
            return set()
        e = self.engine.engine
        returns = returns_of(profile, e.repeats, e.catalog)
        banned = banned_items(profile, e.ranking, now_ms, returns)
        self._last = (user, now_ms, banned)
        return banned


class PopularityMethod:
    """Global popularity of purchases so far (top list refreshed every 500 events)."""

    def __init__(self, rules: EngineRules, name: str = "popularity") -> None:
        self.name = name
        self.counts: Counter[str] = Counter()
        self.rules = rules
        self._top: list[str] = []
        self._dirty = 0

    def top(self, n: int) -> list[str]:
        if self._dirty >= 500 or len(self._top) < n:
            self._top = [
                i for i, _ in heapq.nlargest(max(n, 200), self.counts.items(), key=lambda kv: kv[1])
            ]
            self._dirty = 0
        return self._top

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        return self.pad([], self.rules.banned(user_id, now_ms), k)

    def pad(self, picks: list[str], banned: set[str], k: int) -> list[str]:
        """Fill a personal list up to k with eligible popular items."""
        for item in self.top(k + len(banned) + len(picks) + 50):
            if len(picks) >= k:
                break
            if item not in banned and item not in picks:
                picks.append(item)
        return picks

    def observe(self, message: dict[str, Any]) -> None:
        event = user_event(message)
        if event is None:
            return
        if event.topic == "orders":
            self.counts.update(event.item_ids)
            self._dirty += 1


class BuyAgainMethod(PopularityMethod):
    """The user's most frequently bought items (ties: most recent), padded with popular ones."""

    def __init__(self, rules: EngineRules) -> None:
        super().__init__(rules, name="buy_again")
        self.history: dict[str, dict[str, tuple[int, int]]] = {}

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        banned = self.rules.banned(user_id, now_ms)
        mine = self.history.get(user_id, {})
        ordered = sorted(mine, key=lambda i: (-mine[i][0], -mine[i][1]))
        picks = [i for i in ordered if i not in banned][:k]
        return self.pad(picks, banned, k)

    def observe(self, message: dict[str, Any]) -> None:
        super().observe(message)
        event = user_event(message)
        if event is not None and event.topic == "orders":
            mine = self.history.setdefault(event.user_id, {})
            for item in event.item_ids:
                n, _ = mine.get(item, (0, 0))
                mine[item] = (n + 1, event.ts)


class FrozenCoOccurrenceMethod(PopularityMethod):
    """Item co-occurrence learned on the warm-up period only, then frozen (no real-time model
    updates); a user's list sums the frozen relations of their 10 most recent items."""

    def __init__(self, rules: EngineRules, train_until_ms: int) -> None:
        super().__init__(rules, name="cooccurrence_frozen")
        self.train_until_ms = train_until_ms
        self.cooc = CoOccurrence()  # the engine's own bounds, for a like-for-like comparison
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self.recent: dict[str, list[str]] = {}

    def _idx(self, item: str) -> int:
        idx = self.ids.get(item)
        if idx is None:
            idx = self.ids[item] = len(self.names)
            self.names.append(item)
        return idx

    def recommend(self, user_id: str, now_ms: int, k: int) -> list[str]:
        banned = self.rules.banned(user_id, now_ms)
        scores: Counter[str] = Counter()
        for item in self.recent.get(user_id, [])[:10]:
            if item in self.ids:
                targets, strengths = self.cooc.related(self.ids[item])
                for j, s in zip(targets.tolist(), strengths.tolist(), strict=True):
                    scores[self.names[j]] += s
        picks = [i for i, _ in scores.most_common() if i not in banned][:k]
        return self.pad(picks, banned, k)

    def observe(self, message: dict[str, Any]) -> None:
        super().observe(message)
        event = user_event(message)
        if event is None or not event.item_ids or event.topic == "returns":
            return
        if event.topic == "orders" and event.ts < self.train_until_ms:
            context = [self._idx(i) for i in self.recent.get(event.user_id, [])[:10]]
            self.cooc.observe([self._idx(i) for i in event.item_ids], context)
        mine = self.recent.setdefault(event.user_id, [])
        fresh = list(dict.fromkeys(event.item_ids))
        mine[:] = (fresh + [i for i in mine if i not in fresh])[:50]


def all_methods(
    ranking: RankingProfile,
    train_until_ms: int,
    intervals_ms: Iterable[tuple[str, int]],
    profile_config: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    lookup: SharedLookup | None = None,
) -> list[Method]:
    """Baselines first, then the engine variants; baselines share the real-time engine's
    eligibility rules, so one interval must be 0 (the real-time engine every report is about).
    With a Pfeed ``lookup`` every variant ranks from it, and ``engine_realtime_no_pfeed`` (the
    real-time engine on co-occurrence alone) is added for comparison."""
    engines = [
        EngineMethod(f"engine_{label}", ranking, interval, profile_config, lookup)
        for label, interval in intervals_ms
    ]
    if lookup is not None:
        engines.append(EngineMethod(NO_PFEED, ranking, 0, profile_config))
    realtime = next((m for m in engines if m.refresh_ms == 0), None)
    if realtime is None:
        raise ValueError("the evaluation needs a real-time engine (an interval of 0)")
    rules = EngineRules(realtime)
    return [
        PopularityMethod(rules),
        BuyAgainMethod(rules),
        FrozenCoOccurrenceMethod(rules, train_until_ms),
        *engines,
    ]
