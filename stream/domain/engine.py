"""The engine step: ``step(state, events) -> (state, recommendations)`` with no I/O.

Workers, the offline evaluator and the benchmarks all call this, so what is measured offline is
what runs online. Read models (catalog, relations) are worker-local and updated here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from stream.domain import first_seen, pairing
from stream.domain.catalog import Catalog
from stream.domain.dedup import event_key, prune, remember
from stream.domain.dedup import keys as seen_keys
from stream.domain.events import UserEvent
from stream.domain.learned import RepeatModel
from stream.domain.learning import Learner, Observation, observation_weight
from stream.domain.lost import lost_items
from stream.domain.profile import (
    DEFAULT_PROFILE_CONFIG,
    ProfileConfig,
    UserProfile,
    apply_event,
    is_replay,
)
from stream.domain.ranking import RankedItem, RankingProfile, rank_feeds
from stream.domain.relations import CoOccurrence, RelatedItems
from stream.domain.trending import Trending

#: Recent views within this window co-occur with a new interaction.
SESSION_WINDOW_MS = pairing.WINDOW_MS


@dataclass(frozen=True, slots=True)
class Trigger:
    """The event a list answers to; lets consumers de-duplicate repeats after a crash."""

    event_id: str
    topic: str
    ts: int

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "topic": self.topic, "ts": self.ts}


@dataclass(slots=True)
class Recommendation:
    user_id: str
    feed: str
    items: list[RankedItem]
    profile: str
    variant: str
    trigger: Trigger
    state_version: int

    def to_message(self, emitted_at_ms: int, received_ms: int | None = None) -> dict[str, Any]:
        """The `recommendations` topic message (schemas/recommendations.schema.json).

        ``latency_ms`` is measured from when the broker received the triggering event (its
        record timestamp), not from the event's ``ts``, which for replayed data lies years back.
        """
        message = {
            "user_id": self.user_id,
            "feed": self.feed,
            "items": [item.to_dict() for item in self.items],
            "profile": self.profile,
            "variant": self.variant,
            "trigger": self.trigger.to_dict(),
            "emitted_at": emitted_at_ms,
            "state_version": self.state_version,
        }
        if received_ms is not None:
            message["latency_ms"] = max(0, emitted_at_ms - received_ms)
        return message


@dataclass
class StepResult:
    state: UserProfile
    recommendations: list[Recommendation]
    applied: int
    #: what the applied events teach the shared read models (published on `learned`)
    observations: list[Observation] = field(default_factory=list)
    #: the lists answer only ``refresh`` events (the profile changed only in ``last_items``)
    refreshed: bool = False
    #: (topic, "replay" | "duplicate") of each event skipped, for the per-topic counts
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def replayed(self) -> int:
        return replays(self.skipped)


@dataclass(slots=True)
class Folded:
    """A burst folded into a profile (``Engine.apply_observed``)."""

    profile: UserProfile
    applied: int = 0
    observations: list[Observation] = field(default_factory=list)
    #: (topic, "replay" | "duplicate") of each event skipped, in order
    skipped: list[tuple[str, str]] = field(default_factory=list)


def replays(skipped: list[tuple[str, str]]) -> int:
    """How many of the skipped events were replays (an offset already applied)."""
    return sum(1 for _, why in skipped if why == "replay")


@dataclass
class Engine:
    """Pure domain logic around worker-local read models."""

    catalog: Catalog = field(default_factory=Catalog)
    relations: RelatedItems = field(default_factory=CoOccurrence)
    ranking: RankingProfile = field(default_factory=RankingProfile)
    profile_config: ProfileConfig = DEFAULT_PROFILE_CONFIG
    variant: str = "A"
    feeds: tuple[str, ...] = ("for_you",)
    repeats: RepeatModel = field(default_factory=RepeatModel)
    trending: Trending = field(default_factory=Trending)
    learner: Learner = field(init=False)
    #: observations whose local application waits for the end of ``learning_held`` (None:
    #: each is applied as it is made)
    _held: list[Observation] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.learner = Learner(self.catalog, self.relations, self.repeats, self.trending)
        if isinstance(self.relations, CoOccurrence):
            catalog = self.catalog
            self.relations.tiebreak = lambda idx: catalog.tiebreak[idx]

    def _features_of(self, item_id: str) -> Iterable[str]:
        idx = self.catalog.index.get(item_id)
        return () if idx is None else self.catalog.features_of(idx)

    def learn(self, profile: UserProfile, event: UserEvent) -> Observation | None:
        """What one event teaches the shared read models (popularity, trending, co-occurrence,
        repeat propensities); applied here at once and returned for publication on `learned`
        (see ``stream.domain.learning``). Pairs and flags are decided by event time from the
        profile's ``timeline`` and ``firsts``, which this records the event in, so they are the
        same whatever order a user's topics arrive in."""
        weight = observation_weight(event.topic, event.action)
        if weight <= 0 or not event.item_ids:
            return None
        pairs = pairing.record(
            profile.timeline, event.ts, event.event_id, event.item_ids, weight, event.topic
        )
        is_order = event.topic == "orders"
        flags = first_seen.record(profile.firsts, event.ts, event.item_ids, is_order)
        obs = Observation(
            event.source,
            tuple(event.item_ids),
            (),
            weight,
            event.topic,
            event.ts,
            flags,
            tuple(pairs),
        )
        if self._held is None:
            self.learner.local(obs)
        else:
            self._held.append(obs)
        return obs

    @contextmanager
    def learning_held(self) -> Iterator[None]:
        """Steps inside rank without what they teach the shared read models; it is applied in
        order when the block ends normally (dropped if it raises: that batch is not committed).

        Why: applying an observation dirties the shared read models (popularity and per-feature
        top lists, trending, co-occurrence counts), and the next ranking pays for bringing them up
        to date. A worker's batch holds up to ``batch_max`` users' bursts: held, that refresh is
        paid once per batch, not once per user (in-process, 256-event windows: 5-12 % less CPU
        per event; nothing changes for a batch of one user). What a list misses is its own
        batch's events in other users' counts and its own event's one pair or popularity step.
        The offline evaluator steps without it, one burst at a time. ``release_learning``
        inside the block applies what is held so far, early (the bench times it that way)."""
        if self._held is not None:
            raise RuntimeError("learning is already held")
        self._held = []
        try:
            yield
        except BaseException:
            self._held = None  # dropped: the batch is not committed
            raise
        self.release_learning()

    def release_learning(self) -> int:
        """Apply the held observations in order and stop holding; returns how many (0 when
        nothing is held)."""
        held, self._held = self._held or [], None
        for obs in held:
            self.learner.local(obs)
        return len(held)

    def apply(
        self, state: UserProfile | None, user_id: str, events: list[UserEvent]
    ) -> tuple[UserProfile, int, int]:
        """Fold events into the profile; returns (profile, applied, skipped replays)."""
        folded = self.apply_observed(state, user_id, events)
        return folded.profile, folded.applied, replays(folded.skipped)

    def apply_observed(
        self, state: UserProfile | None, user_id: str, events: list[UserEvent]
    ) -> Folded:
        """Fold events into the profile, skipping replays (an offset already applied) and
        producer duplicates (``stream.domain.dedup``); also returns what the applied events
        teach the shared read models."""
        profile = state if state is not None else UserProfile(user_id=user_id)
        folded = Folded(profile)
        cfg = self.profile_config
        keys = seen_keys(profile.seen) if cfg.dedup_window_ms > 0 else None
        for event in events:
            if is_replay(profile, event):  # already applied: shared models must not count it again
                folded.skipped.append((event.topic, "replay"))
                continue
            key = None
            if keys is not None:
                key = event_key(event.topic, event.event_id)
                if key in keys:
                    folded.skipped.append((event.topic, "duplicate"))
                    continue
                keys.add(key)
            obs = self.learn(profile, event)  # before apply: relate to the queries *before* it
            if obs is not None:
                folded.observations.append(obs)
            apply_event(profile, event, self._features_of, cfg)
            if key is not None:
                remember(profile.seen, event.ts, key)
            folded.applied += 1
        if folded.applied:
            profile.version += 1
            if keys is not None:
                prune(profile.seen, profile.last_ts, cfg.dedup_window_ms, cfg.max_seen)
        return folded

    def recommend(
        self, profile: UserProfile, trigger: Trigger, now_ms: float | None = None
    ) -> list[Recommendation]:
        """Rank every configured feed for this user; remembers the for_you list in the profile."""
        now = float(trigger.ts if now_ms is None else now_ms)
        out = []
        lists = rank_feeds(  # one scored candidate set, masked per feed
            profile,
            self.catalog,
            self.relations,
            self.ranking,
            now,
            self.feeds,
            self.profile_config,
            learned=self.repeats,
            trending=self.trending,
        )
        for feed in self.feeds:
            items = lists[feed]
            if feed == "for_you":  # (what it lost to the stock first: stream.domain.lost)
                profile.lost = lost_items(profile.last_items, profile.lost, self.catalog)
                profile.last_items = [item.item_id for item in items]
            out.append(
                Recommendation(
                    profile.user_id,
                    feed,
                    items,
                    self.ranking.label,
                    self.variant,
                    trigger,
                    profile.version,
                )
            )
        return out

    def step(self, state: UserProfile | None, user_id: str, events: list[UserEvent]) -> StepResult:
        """Apply a burst of one user's events, then rank once (coalescing).

        A ``refresh`` event applies nothing; it asks for a fresh list as of its time (a held item
        went out of stock, one the list lost came back, or the shop asks for one when a shopper
        arrives). The worker and the offline evaluator both answer it here, so a list scored
        offline is a list the worker would emit."""
        updates, refreshes = split_refreshes(events)
        folded = self.apply_observed(state, user_id, updates)
        profile, applied = folded.profile, folded.applied
        recs = self.answer(profile, updates if applied else [], refreshes)
        refreshed = bool(recs) and not applied
        return StepResult(profile, recs, applied, folded.observations, refreshed, folded.skipped)

    def answer(
        self, profile: UserProfile, updates: list[UserEvent], refreshes: list[UserEvent]
    ) -> list[Recommendation]:
        """The lists for a burst whose ``updates`` were applied (empty: none was): they answer
        its newest event; a burst of refreshes only answers a stock change, as of its time."""
        if updates:
            last = newest(updates)
            now = max(profile.last_ts, last.ts, *(r.ts for r in refreshes))
            return self.recommend(profile, Trigger(last.event_id, last.topic, last.ts), now)
        if refreshes:
            last = newest(refreshes)
            now = max(profile.last_ts, last.ts)
            # refreshes answer stock changes by the topic's contract: the stock event is the trigger
            return self.recommend(profile, Trigger(last.event_id, "stock", last.ts), now)
        return []


def split_refreshes(events: list[UserEvent]) -> tuple[list[UserEvent], list[UserEvent]]:
    """A burst's events to apply, and its ``refresh`` requests (which apply nothing)."""
    updates = [e for e in events if e.topic != "refresh"]
    return updates, [e for e in events if e.topic == "refresh"]


def newest(events: list[UserEvent]) -> UserEvent:
    """The event a coalesced list answers: the newest by event time (the last of equals).

    Not simply the batch's last: a batch interleaves a user's topics in fetch order, so an
    order sent after a click can come first. Naming the click would leave the order looking
    unanswered to a consumer waiting for its list (measured: such events were "answered" only
    by the user's next list, seconds later)."""
    return max(reversed(events), key=attrgetter("ts"))
