"""Prometheus metrics for one worker (own registry: several apps can live in one process).

Invariant exported for dashboards and tests: for every topic,
``consumed == processed + dead_lettered`` (replays skipped by idempotency count as processed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.consumed = Counter("recstream_events_consumed", "Messages read", ["topic"], registry=r)
        self.processed = Counter(
            "recstream_events_processed",
            "Messages applied or skipped as replays",
            ["topic"],
            registry=r,
        )
        self.replayed = Counter(
            "recstream_events_replayed",
            "Replays skipped by offset idempotency",
            ["topic"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "recstream_dead_letters",
            "Messages sent to dead-letters",
            ["topic", "reason"],
            registry=r,
        )
        self.recommendations = Counter(
            "recstream_recommendations_emitted",
            "Recommendation lists emitted",
            ["feed", "trigger"],
            registry=r,
        )
        self.stock_refreshes = Counter(
            "recstream_stock_refreshes",
            "Lists re-pushed because an item went out of stock",
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
        self.catalog_items = Gauge(
            "recstream_catalog_items", "Items in the local catalog replica", registry=r
        )
        self.catalog_out_of_stock = Gauge(
            "recstream_catalog_out_of_stock", "Items currently out of stock", registry=r
        )
        self.users_holding = Gauge(
            "recstream_users_with_lists", "Users with a live list on this worker", registry=r
        )

    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` (0 = disabled)."""
        if port:
            start_http_server(port, addr="0.0.0.0", registry=self.registry)

    def on_qdrant_flush(self, points: int, lag_seconds: float) -> None:
        self.qdrant_points.inc(points)
        self.qdrant_lag.observe(lag_seconds)
