"""Live ranking profiles in a worker: follow `ranking-profiles`, choose per user, score shadows.

Every worker reads the whole `ranking-profiles` topic from the beginning with its own consumer
(no group, like the catalog replica: see ``stream.adapters.follower``) and keeps following it,
so a worker that starts later ends on the latest body per name, and a push reaches every worker
one fetch later (``RECSTREAM_FETCH_MAX_WAIT_MS``, 20 ms by default), with no restart.

The pipeline calls ``before_step`` and ``after_step`` around each user burst. A record can only
change the registry while the event loop runs the follower's task, i.e. at an ``await`` of the
pipeline, never inside the synchronous planning of a batch: a batch's users are all ranked with
one registry state, and no event is dropped or held back by a swap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from stream.adapters.follower import Follower
from stream.adapters.metrics import Metrics
from stream.adapters.profile_body import decode_record, parse_profile
from stream.domain.engine import Engine, Recommendation
from stream.domain.events import UserEvent
from stream.domain.list_compare import hit, overlap_at_k, rank_correlation
from stream.domain.profile import UserProfile
from stream.domain.profile_registry import ProfileRegistry, Update
from stream.domain.shadow import K, Shown, ShownLists, next_interaction, shadow_lists
from stream.settings import Settings

log = logging.getLogger(__name__)

TOPIC = "ranking-profiles"
SHADOW_TOPIC = "recommendations-shadow"
#: (logical topic, key, value) as the pipeline's BatchPlan.outputs holds them
Output = tuple[str, bytes, bytes | None]
_LOG_LEVEL = {"rejected": logging.WARNING, "stale": logging.WARNING, "ignored": logging.DEBUG}


class ProfileRuntime:
    """A worker's live profiles: the follower that feeds the registry, the gauges that show
    it, and the pipeline hooks (per-user profile and variant, hits, shadow lists)."""

    def __init__(
        self, settings: Settings, engine: Engine, metrics: Metrics, shown_capacity: int = 100_000
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.registry = ProfileRegistry.starting_with(engine.ranking, parse_profile)
        self.shown = ShownLists(shown_capacity)
        self.follower = Follower(settings, [settings.topic(TOPIC)], self._on_record, "profiles")
        self._series: list[tuple[str, str]] = []
        self._replayed = False  # the start replay is over: later records are live pushes
        #: label children cached (``labels()`` takes a lock and a dict walk: per burst, it shows)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._shadow_series: tuple[str, str] | None = None
        self._publish()

    # -- following the topic ------------------------------------------------------------------
    async def start(self, timeout: float = 60.0) -> None:
        """Read the topic to its end before the worker serves anything (no list is ranked
        with a profile the topic has already replaced)."""
        await self.follower.start()
        if not await self.follower.caught_up(timeout):
            raise RuntimeError(f"{TOPIC} follower did not catch up within {timeout:.0f} s")
        self._replayed = True
        log.info("ranking profile %s is live%s", self.registry.live.label, self._shadow_note())

    async def stop(self) -> None:
        await self.follower.stop()

    @property
    def failed(self) -> BaseException | None:
        return self.follower.failed

    async def _on_record(self, topic: str, record: ConsumerRecord[bytes, bytes]) -> None:
        update = self.apply(record.key, record.value)
        if update.changed and self._replayed and record.timestamp > 0:
            lag = max(0.0, time.time() - record.timestamp / 1000.0)
            self.metrics.swap_lag.set(lag)
            log.info("%s: live %.0f ms after publication", update.label, lag * 1000)

    def apply(self, key: bytes | None, value: bytes | None) -> Update:
        """One record into the registry; never raises for bad data (it is logged + counted)."""
        try:
            name, body = decode_record(key, value)
        except ValueError as exc:
            label = (key or b"?").decode("utf-8", errors="replace")
            update = Update("rejected", label, f"invalid profile {label}: {exc}")
        else:
            update = self.registry.offer(name, body)
        self.metrics.updates.labels(update.outcome).inc()
        if update.outcome == "rejected":
            log.warning("%s; keeping %s", update.detail, self.registry.live.label)
        else:
            log.log(_LOG_LEVEL.get(update.outcome, logging.INFO), "%s", update.detail)
        if update.changed:
            self._publish()
        return update

    def info(self) -> list[tuple[str, str]]:
        """(name@version, variant) of every live variant, for ``recstream_ranking_profile_info``."""
        return [(label, variant) for label, variant, _ in self.registry.live.info()]

    def _publish(self) -> None:
        """Variant shares and the shadow pair as gauges (old label sets retired)."""
        m = self.metrics
        for labels in self._series:
            m.variant_share.remove(*labels)
        live = self.registry.live.info()
        for label, variant, share in live:
            m.variant_share.labels(label, variant).set(share)
        self._series = [(label, variant) for label, variant, _ in live]
        if self._shadow_series is not None:
            m.shadow_info.remove(*self._shadow_series)
            self._shadow_series = None
        shadow = self.registry.shadow
        if shadow is not None:
            self._shadow_series = (self.registry.live.label, shadow.label)
            m.shadow_info.labels(*self._shadow_series).set(1)

    def _shadow_note(self) -> str:
        shadow = self.registry.shadow
        return "" if shadow is None else f" (shadow {shadow.label})"

    # -- pipeline hooks -----------------------------------------------------------------------
    def before_step(self, user_id: str, events: Sequence[UserEvent]) -> None:
        """Set the engine to this user's profile and variant; count whether the user's next
        interaction hit the lists they were last shown (live and shadow)."""
        ranking, variant = self.registry.live.choose(user_id)
        self.engine.ranking, self.engine.variant = ranking, variant
        forgets = [i for i, e in enumerate(events) if e.topic == "forget"]
        if forgets:
            self.shown.drop(user_id)  # erasure: nothing of the user stays here either
            events = events[forgets[-1] + 1 :]
        shown = self.shown.get(user_id)
        items = next_interaction(events) if shown is not None else None
        if shown is None or items is None:
            return
        m = self.metrics
        self._child(m.variant_opportunities, shown.profile, shown.variant).inc()
        if hit(items, shown.items, K):
            self._child(m.variant_hits, shown.profile, shown.variant).inc()
        if shown.shadow is not None:
            self._child(m.shadow_opportunities, shown.profile, shown.shadow).inc()
            for ranking_name, listed in (("active", shown.items), ("shadow", shown.shadow_items)):
                if hit(items, listed, K):
                    self._child(m.shadow_hits, shown.profile, shown.shadow, ranking_name).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def after_step(self, profile: UserProfile, recs: Sequence[Recommendation]) -> list[Output]:
        """Remember the lists shown; with a shadow, rank it too and return its messages."""
        if not recs:
            return []
        live = next((r for r in recs if r.feed == "for_you"), None)
        shadow = self.registry.shadow
        outputs: list[Output] = []
        shadow_ids: tuple[str, ...] = ()
        if shadow is not None:
            ranking, variant = shadow.choose(profile.user_id)
            now_ms = int(time.time() * 1000)
            alts = shadow_lists(self.engine, profile, recs, ranking, variant)
            for rec, alt in zip(recs, alts, strict=True):
                self._compare(rec, alt)
                message = orjson.dumps(alt.to_message(now_ms))
                outputs.append((SHADOW_TOPIC, alt.user_id.encode(), message))
                if alt.feed == "for_you":
                    shadow_ids = tuple(item.item_id for item in alt.items[:K])
        if live is not None:
            ids = tuple(item.item_id for item in live.items[:K])
            label = shadow.label if shadow is not None else None
            shown = Shown(live.profile, live.variant, ids, label, shadow_ids)
            self.shown.put(profile.user_id, shown)
        return outputs

    def _compare(self, live: Recommendation, alt: Recommendation) -> None:
        m = self.metrics
        a = [item.item_id for item in live.items]
        b = [item.item_id for item in alt.items]
        labels = (live.profile, alt.profile, live.feed)
        self._child(m.shadow_lists, *labels).inc()
        self._child(m.shadow_overlap, *labels).observe(overlap_at_k(a, b, K))
        self._child(m.shadow_correlation, *labels).observe(rank_correlation(a, b, K))
