"""Gauges sampled once a second by the worker's watchdog (``stream.lifecycle.Lifecycle._watch``).

These values live in other components (Faust's consumer thread, RocksDB, the catalog replica,
the coalescing writer, the engine's active profile and model). Reading them on the event loop
once a second costs nothing on the per-event path and never races a scrape.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from stream.adapters.metrics import Metrics
from stream.settings import CONTROL_TOPICS, USER_TOPICS

log = logging.getLogger(__name__)

#: Counting users iterates the state's keys on the event loop (~0.6 s per million): the pause
#: between counts is 100x the last count's duration (<= 1 % of the loop), at least 5 s.
USERS_COUNT_MIN_INTERVAL_S = 5.0
USERS_COUNT_COST_FACTOR = 100.0
REPLICA_LAG_TIMEOUT_S = 0.5
#: (consumer, topic, partition) -> messages behind
Lag = dict[tuple[str, str, int], int]


def group_lag(faust_app: Any, topics: Iterable[str]) -> Lag:
    """High-water mark minus committed offset for the input partitions assigned to this worker.

    Uses Faust's consumer (``assignment``, ``highwater``, the committed offsets it tracks).
    Changelog partitions are left out: they are only read during recovery and never committed,
    so their "lag" would be the changelog's length. A partition with no fetch yet (no known
    high-water mark) is skipped; one with nothing committed yet counts from offset 0.
    """
    wanted = set(topics)
    consumer = getattr(faust_app, "_consumer", None)  # the property would create one
    if consumer is None:
        return {}
    try:
        assigned = consumer.assignment()
    except Exception:  # consumer thread not started yet, or between generations
        return {}
    committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
    lag: Lag = {}
    for tp in assigned:
        if tp.topic not in wanted:
            continue
        try:
            high = consumer.highwater(tp)
        except Exception:  # partition revoked between assignment() and highwater()
            continue
        if high is None:
            continue
        done = committed.get(tp) or 0
        lag[("group", tp.topic, tp.partition)] = max(0, high - done)
    return lag


class RuntimeSampler:
    """Refreshes the sampled gauges; owns the label sets it must retire (revoked partitions,
    replaced profiles) so stale series disappear instead of lingering at their last value."""

    def __init__(self, metrics: Metrics, rapp: Any) -> None:
        self.metrics = metrics
        self.rapp = rapp
        settings = rapp.settings
        # item topics have their own group and consumer (``item_group``), sampled apart
        self.group_topics = [settings.topic(name) for name in USER_TOPICS + CONTROL_TOPICS]
        self._lag_keys: set[tuple[str, str, int]] = set()
        self._last_source_lag: dict[str, Lag] = {}  # per reader: its last answer
        self._profile: frozenset[tuple[str, str]] = frozenset()
        self._model: tuple[str, str] | None = None
        self._next_users_count = -math.inf

    async def sample(self) -> None:
        """One refresh; a failing source is logged at debug and skipped, never fatal."""
        r, m = self.rapp, self.metrics
        m.sync_sampled()
        m.catalog_items.set(len(r.engine.catalog))
        m.catalog_time_bounded.set(r.replica.time_bounded)
        m.stale_stock.set(r.replica.stale_stock)
        m.qdrant_pending.set(r.writer.pending)
        m.qdrant_oldest.set(r.writer.oldest_pending_seconds)
        # serving: the engine prepared and the user partitions assigned (``stream.readiness``)
        m.ready.set(1 if r.pipeline.ready.is_set() and r.pipeline.users_assigned else 0)
        users = getattr(r, "users", None)
        lag = {} if users is not None else group_lag(r.faust_app, self.group_topics)
        sources = (("replica", r.replica), ("item group", getattr(r, "items", None)))
        for name, source in (*sources, ("user group", users)):
            if source is not None:
                lag.update(await self._source_lag(name, source))
        self._set_lag(lag)
        m.state_bytes.set(r.store.size_bytes())
        snapshots = getattr(r.replica, "snapshots", None)
        if snapshots is not None:
            m.snapshot_written.set(snapshots.written_at)
            m.snapshot_loop.set(snapshots.last_loop_seconds)
        started = time.monotonic()
        if started >= self._next_users_count:
            m.state_users.set(r.store.user_count())
            took = time.monotonic() - started
            pause = max(USERS_COUNT_MIN_INTERVAL_S, USERS_COUNT_COST_FACTOR * took)
            self._next_users_count = started + pause
        profiles = getattr(r, "profiles", None)  # live profiles: one series per A/B variant
        engine = r.engine
        self._set_profile(
            profiles.info() if profiles is not None else [(engine.ranking.label, engine.variant)]
        )
        self._set_model(r.engine.relations)
        pfeed = getattr(r, "pfeed", None)
        if pfeed is not None:
            m.lookup_pending.set(pfeed.pending_items)
            m.lookup_update.set(pfeed.last_update_seconds)

    async def _source_lag(self, name: str, source: Any) -> Lag:
        """One reader's lag. Each reader is asked on its own, so one that cannot answer hides
        no other's; one that cannot answer keeps its last values (a series that vanished for
        a sample would read as a retired partition, and an alert on it would flap)."""
        try:
            # position() may wait for an offset reset: never hold up the watchdog for it
            lag: Lag = await asyncio.wait_for(source.lag(), REPLICA_LAG_TIMEOUT_S)
        except Exception:
            log.debug("%s lag unavailable", name, exc_info=True)
            return self._last_source_lag.get(name, {})
        self._last_source_lag[name] = lag
        return lag

    def _set_lag(self, lag: Lag) -> None:
        gauge = self.metrics.consumer_lag
        for key in self._lag_keys - lag.keys():
            gauge.remove(key[0], key[1], str(key[2]))
        for (consumer, topic, partition), value in lag.items():
            gauge.labels(consumer, topic, str(partition)).set(value)
        self._lag_keys = set(lag)

    def _set_profile(self, series: Iterable[tuple[str, str]]) -> None:
        current = frozenset(series)
        if current == self._profile:
            return
        for labels in self._profile - current:
            self.metrics.ranking_profile.remove(*labels)
        for labels in current:
            self.metrics.ranking_profile.labels(*labels).set(1)
        self.metrics.ranking_profile_loaded.set(time.time())
        self._profile = current

    def _set_model(self, relations: Any) -> None:
        """Duck-typed: a relations object may offer ``name``, ``version`` and ``built_at_s``
        (epoch seconds); the online co-occurrence model has none and reports "online"."""
        name = str(getattr(relations, "name", type(relations).__name__.lower()))
        current = (name, str(getattr(relations, "version", "online")))
        if current == self._model:
            return
        if self._model is not None:
            self.metrics.model.remove(*self._model)
            self.metrics.model_built.remove(self._model[0])
        self.metrics.model.labels(*current).set(1)
        built = getattr(relations, "built_at_s", None)
        self.metrics.model_built.labels(name).set(float(built) if built else time.time())
        self._model = current
