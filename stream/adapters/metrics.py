"""Prometheus metrics for one worker (own registry: several apps can live in one process).

Every metric the worker exports is declared here, so the dashboards (deploy/grafana), the alert
rules (deploy/prometheus) and the README's metric list have one place to agree with.

Invariant exported for dashboards and tests: for every topic,
``consumed == processed + dead_lettered`` (replays skipped by idempotency count as processed).

Label sets are bounded by construction: topics, partitions, feeds, stages, outcomes, ranking
profile labels (``name@version``: a handful per process lifetime). Never a user or item id.
The helper methods (``observe_stage``, ``on_list`` …) cache label children so call sites on the
hot path stay one line and cost about a microsecond.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from stream.adapters.loop_histogram import LoopHistogram, LoopHistogramChild
from stream.adapters.profile_metrics import ProfileMetrics
from stream.settings import CONTROL_TOPICS, ITEM_TOPICS, USER_TOPICS

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Stage and batch timings: tens of microseconds (a state read) up to a second (a stalled send).
_STAGE_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
_LIST_SIZE_BUCKETS = (0, 1, 5, 10, 20, 50, 100, 200)
_QDRANT_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)

#: Pipeline stages timed by ``recstream_stage_seconds``: ``decode`` (per batch), ``state_read``
#: and ``engine`` (per user burst; the engine step is profile update + candidates + ranking in
#: one pure call today — ``candidates`` and ``rank`` are reserved for when the domain exposes
#: them separately), ``send`` (outputs delivered) and ``state_write`` (per batch), ``qdrant``
#: (per sink call, off the hot path), and ``delivery`` (per user event: its broker timestamp →
#: its batch handed to the pipeline, i.e. fetch + Faust + waiting for the worker; at a load
#: the worker keeps up with, most of an event's latency was there, not in the stages above).
STAGES = (
    "decode", "state_read", "engine", "candidates", "rank", "send", "state_write", "qdrant",
    "delivery",
)  # fmt: skip
#: Who reads a partition: the Faust group consumer (user topics) or the per-worker replica.
CONSUMERS = ("group", "replica")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Metrics(ProfileMetrics):
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self._declare_events()
        self._declare_lists()
        self._declare_qdrant()
        self._declare_runtime()
        self._declare_profiles()
        for topic in USER_TOPICS + CONTROL_TOPICS + ITEM_TOPICS:  # zero, not absent
            for counter in (self.consumed, self.processed, self.replayed, self.duplicates):
                counter.labels(topic)
        self._stage_children: dict[str, LoopHistogramChild] = {}  # on first use: no empty series
        self._list_children: dict[tuple[str, str, str], tuple[Counter, LoopHistogramChild]] = {}
        self._last_list: dict[str, float] = {}  # feed -> wall time; published by sync_sampled

    # -- declarations -------------------------------------------------------------------------
    def _declare_events(self) -> None:
        r = self.registry
        self.consumed = Counter("recstream_events_consumed", "Messages read", ["topic"], registry=r)
        self.processed = Counter(
            "recstream_events_processed",
            "Messages applied, or skipped as replays or duplicates",
            ["topic"],
            registry=r,
        )
        self.replayed = Counter(
            "recstream_events_replayed",
            "Replays skipped by offset idempotency",
            ["topic"],
            registry=r,
        )
        self.duplicates = Counter(
            "recstream_events_duplicate",
            "Producer duplicates skipped: the topic and event_id of an event applied within "
            "RECSTREAM_DEDUP_WINDOW_S of the user's newest (counted as processed too)",
            ["topic"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "recstream_dead_letters",
            "Messages sent to dead-letters",
            ["topic", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "recstream_event_to_recommendation_seconds",
            "Produce time of the triggering event to emission",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.step_seconds = Histogram(
            "recstream_step_seconds",
            "Profile update + ranking per user burst",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
            registry=r,
        )
        self.batch_size = Histogram(
            "recstream_batch_events",
            "Events per coalesced batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.stage_seconds = LoopHistogram(
            "recstream_stage_seconds",
            "Time per pipeline stage (decode, send, state_write per batch; state_read, engine "
            "per user burst; qdrant per sink call; delivery per event: broker → pipeline)",
            ["stage"],
            _STAGE_BUCKETS,
            r,
        )
        self.batch_seconds = Histogram(
            "recstream_batch_processing_seconds",
            "In-worker time for one agent batch (agent: users or items), decode to state written",
            ["agent"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )

    def _declare_lists(self) -> None:
        r = self.registry
        self.recommendations = Counter(
            "recstream_recommendations_emitted",
            "Recommendation lists emitted",
            ["feed", "trigger"],
            registry=r,
        )
        self.lists = Counter(
            "recstream_lists_emitted",
            "Recommendation lists emitted by feed, ranking profile (name@version) and variant",
            ["feed", "profile", "variant"],
            registry=r,
        )
        self.list_size = LoopHistogram(
            "recstream_list_size_items", "Items per emitted list", ["feed"], _LIST_SIZE_BUCKETS, r
        )
        self.last_list = Gauge(
            "recstream_last_list_timestamp_seconds",
            "Wall-clock time of the last list emitted per feed (freshness; sampled each second)",
            ["feed"],
            registry=r,
        )
        self.stock_refreshes = Counter(
            "recstream_stock_refreshes",
            "Lists re-pushed because an item went out of stock or came back",
            registry=r,
        )
        self.users_holding = Gauge(
            "recstream_users_with_lists", "Users with a live list on this worker", registry=r
        )
        self.users_lost = Gauge(
            "recstream_users_with_lost_items",
            "Users whose list lost items to stock-outs or deletions (refreshed when one returns)",
            registry=r,
        )

    def _declare_qdrant(self) -> None:
        r = self.registry
        self.qdrant_points = Counter(
            "recstream_qdrant_points_written", "User points written", registry=r
        )
        self.qdrant_lag = Histogram(
            "recstream_qdrant_flush_lag_seconds",
            "Submit-to-written lag of the oldest point in a flush",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.qdrant_pending = Gauge(
            "recstream_qdrant_pending_points", "Points waiting for a flush", registry=r
        )
        self.qdrant_oldest = Gauge(
            "recstream_qdrant_oldest_pending_seconds",
            "Age of the oldest point not yet written (grows while Qdrant is down)",
            registry=r,
        )
        self.qdrant_batch = Histogram(
            "recstream_qdrant_batch_points",
            "Points per sink call",
            buckets=_QDRANT_BATCH_BUCKETS,
            registry=r,
        )
        self.qdrant_errors = Counter(
            "recstream_qdrant_errors", "Failed sink calls (the batch is retried)", registry=r
        )
        self.qdrant_rejected = Counter(
            "recstream_qdrant_rejected_points",
            "Points the sink can never store, dropped (logged)",
            registry=r,
        )
        self.qdrant_cpu = Counter(
            "recstream_qdrant_cpu_seconds",
            "CPU time of the Qdrant serving copy: building user points on the event loop "
            "(build) and the sink calls in the writer's thread (write)",
            ["part"],
            registry=r,
        )
        self._qdrant_build = self.qdrant_cpu.labels("build")
        self._qdrant_write = self.qdrant_cpu.labels("write")

    def _declare_runtime(self) -> None:
        r = self.registry
        self.consumer_lag = Gauge(
            "recstream_consumer_lag_messages",
            "High-water mark minus committed (group) or read (replica) offset, per partition",
            ["consumer", "topic", "partition"],
            registry=r,
        )
        self.catalog_items = Gauge(
            "recstream_catalog_items", "Items in the local catalog replica", registry=r
        )
        self.catalog_out_of_stock = Gauge(
            "recstream_catalog_out_of_stock", "Items currently out of stock", registry=r
        )
        self.catalog_time_bounded = Gauge(
            "recstream_catalog_time_bounded",
            "Catalog messages whose ts was further ahead of their record's timestamp than "
            "RECSTREAM_MAX_EVENT_AHEAD_MS, read with the record's time instead (a new item's "
            "first, freshness, time), since this worker started",
            registry=r,
        )
        self.stale_stock = Gauge(
            "recstream_stale_stock",
            "Stock messages skipped because a later one (by ts) for the same item was already "
            "applied or held, since this worker started (its replica re-reads `stock` from the "
            "start)",
            registry=r,
        )
        self.state_users = Gauge(
            "recstream_state_users",
            "Users in this worker's state (active partitions; counted every >= 5 s)",
            registry=r,
        )
        self.state_bytes = Gauge(
            "recstream_state_bytes",
            "RocksDB footprint of this worker's state (SST files + memtable arenas)",
            registry=r,
        )
        self.snapshot_written = Gauge(
            "recstream_learned_snapshot_timestamp_seconds",
            "When this worker last wrote its learned snapshot (0: none since it started)",
            registry=r,
        )
        self.snapshot_loop = Gauge(
            "recstream_learned_snapshot_loop_seconds",
            "How long the last learned snapshot's capture held the event loop",
            registry=r,
        )
        self.ranking_profile = Gauge(
            "recstream_ranking_profile_info",
            "Active ranking profile (value 1; labels name@version and variant)",
            ["profile", "variant"],
            registry=r,
        )
        self.ranking_profile_loaded = Gauge(
            "recstream_ranking_profile_loaded_timestamp_seconds",
            "When the active ranking profile became active in this worker",
            registry=r,
        )
        self.model = Gauge(
            "recstream_model_info",
            "Candidate model / lookup in use (value 1)",
            ["model", "version"],
            registry=r,
        )
        self.model_built = Gauge(
            "recstream_model_built_timestamp_seconds",
            "When the candidate model / lookup in use was built (or loaded, if unknown)",
            ["model"],
            registry=r,
        )
        self.lookup_pending = Gauge(
            "recstream_lookup_pending_items",
            "Catalog messages read and not yet in the Pfeed lookup rows in use",
            registry=r,
        )
        self.lookup_update = Gauge(
            "recstream_lookup_last_update_seconds",
            "How long the last catalog update of the Pfeed lookup took to be in use (thread)",
            registry=r,
        )
        self.build_info = Gauge(
            "recstream_build_info",
            "Worker build (value 1)",
            ["version", "python", "faust"],
            registry=r,
        )
        self.build_info.labels(
            _version("recstream"), platform.python_version(), _version("faust-streaming")
        ).set(1)
        self.start_time = Gauge(
            "recstream_worker_start_time_seconds", "When this worker process started", registry=r
        )
        self.start_time.set(time.time())
        self.ready = Gauge(
            "recstream_worker_ready",
            "1 once the engine is prepared (catalog replica caught up, lookup, kernels) and "
            "the user partitions are assigned",
            registry=r,
        )
        self.gc_pause = Histogram(  # (observed from any thread: not a LoopHistogram)
            "recstream_gc_pause_seconds",
            "Garbage-collector pauses by generation (2 = full; see stream.adapters.gc_pauses)",
            ["generation"],
            buckets=(0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
            registry=r,
        )
        self.gc_frozen = Gauge(
            "recstream_gc_frozen_objects",
            "Objects frozen out of garbage collection once the worker was ready",
            registry=r,
        )

    # -- helpers (one-line call sites) --------------------------------------------------------
    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` (0 = disabled)."""
        if port:
            start_http_server(port, addr="0.0.0.0", registry=self.registry)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """``stage`` must be one of STAGES (anything else is a programming error, not data)."""
        child = self._stage_children.get(stage)
        if child is None:
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
            child = self._stage_children[stage] = self.stage_seconds.labels(stage)
        child.observe(seconds)

    def on_list(self, feed: str, profile: str, variant: str, size: int) -> None:
        """One emitted list: counts, size and freshness (~1.5 µs; called per list per feed)."""
        key = (feed, profile, variant)
        children = self._list_children.get(key)
        if children is None:
            children = (self.lists.labels(feed, profile, variant), self.list_size.labels(feed))
            self._list_children[key] = children
        children[0].inc()
        children[1].observe(size)
        self._last_list[feed] = time.time()

    def sync_sampled(self) -> None:
        """Publish values the hot path only records in plain dicts (gauge sets take a lock)."""
        for feed, at in list(self._last_list.items()):
            self.last_list.labels(feed).set(at)

    def on_qdrant_flush(self, points: int, lag_seconds: float) -> None:
        self.qdrant_points.inc(points)
        self.qdrant_lag.observe(lag_seconds)

    def on_qdrant_cpu(self, seconds: float, part: str = "write") -> None:
        """CPU seconds spent on Qdrant user points (``part``: build or write)."""
        (self._qdrant_build if part == "build" else self._qdrant_write).inc(seconds)

    def on_qdrant_call(self, points: int, seconds: float, failed: bool, rejected: int) -> None:
        """One sink call of the coalescing writer (successful or not)."""
        self.qdrant_batch.observe(points)
        self.observe_stage("qdrant", seconds)
        if failed:
            self.qdrant_errors.inc()
        if rejected:
            self.qdrant_rejected.inc(rejected)
