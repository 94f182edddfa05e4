"""Typed settings: one object, read once from the environment (names fixed by DESIGN.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from stream.adapters.event_loop import EVENT_LOOPS

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

#: Input topics keyed by user_id (co-partitioned: same partition count, default partitioner).
USER_TOPICS: tuple[str, ...] = ("clicks", "dwell", "carts", "orders", "returns", "searches")
#: Input topics keyed by item_id, replicated to every worker.
ITEM_TOPICS: tuple[str, ...] = ("stock", "catalog")
#: Control topics keyed by user_id, co-partitioned with the user topics and consumed by the same
#: agent, so they reach the worker that owns the user's state, in order with the user's events:
#: ``forget`` (right to erasure) and ``refresh`` (re-rank now: an item the user holds sold out,
#: or one their list lost came back).
CONTROL_TOPICS: tuple[str, ...] = ("forget", "refresh")
#: ``learned``: observations from every applied event, followed by every worker (popularity and
#: item relations survive restarts and are the same on every worker). ``recommendations-shadow``:
#: lists of a shadow ranking profile, scored on live traffic and never shown (keyed by user_id).
OUTPUT_TOPICS: tuple[str, ...] = (
    "recommendations", "dead-letters", "ranking-profiles", "learned", "recommendations-shadow",
)  # fmt: skip


#: what may read the user topics (``Settings.user_consumer``)
USER_CONSUMERS: tuple[str, ...] = ("aiokafka", "faust")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    """``_int`` that must be at least 1 (a zero fetch wait would spin a consumer)."""
    value = _int(env, name, default)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    """A duration in seconds, at least ``minimum``: a typo or a NaN is refused by name at
    start-up, not met later as a consumer's odd error or a check that never fires."""
    raw = env.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if not value >= minimum:  # (NaN too)
        raise ValueError(f"{name} must be >= {minimum:g}, got {raw!r}")
    return value


def _non_negative(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _user_consumer(raw: str) -> str:
    if raw not in USER_CONSUMERS:
        raise ValueError(f"RECSTREAM_USER_CONSUMER must be one of {USER_CONSUMERS}, got {raw!r}")
    return raw


def parse_weights(raw: str) -> tuple[float, float]:
    """RECSTREAM_PFEED_WEIGHTS="lookup,cooccurrence" (non-negative floats)."""
    try:
        lookup, cooc = (float(v) for v in raw.split(","))
    except ValueError as exc:
        raise ValueError(f"RECSTREAM_PFEED_WEIGHTS must be two numbers a,b; got {raw!r}") from exc
    return lookup, cooc


@dataclass(frozen=True)
class KafkaSecurity:
    """Client-side Kafka security; PLAINTEXT unless the environment says otherwise."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)  # secrets stay out of logs
    ssl_cafile: str | None = None

    def aiokafka_kwargs(self) -> dict[str, object]:
        """Keyword arguments for aiokafka clients (producer, consumer, admin)."""
        kwargs: dict[str, object] = {"security_protocol": self.protocol}
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        if self.ssl_cafile:
            import ssl

            kwargs["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        return kwargs


@dataclass(frozen=True)
class Settings:
    """Everything a worker, the CLI and the tests need to know about their surroundings."""

    kafka_bootstrap: str = DEFAULT_BOOTSTRAP
    kafka_bootstrap_explicit: bool = False
    #: "auto" probes the broker; "tansu" forces the bundled-broker workarounds; "kafka" = none.
    kafka_flavour: str = "auto"
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    qdrant_url: str | None = None
    qdrant_api_key: str | None = field(default=None, repr=False)
    data_dir: Path = Path("data")
    metrics_port: int = 0
    topic_prefix: str = ""
    partitions: int = 4
    app_id: str = "recstream"
    web_port: int = 6066
    max_message_bytes: int = 64 * 1024
    #: a user event dated further ahead of its record's timestamp (or of this worker's clock,
    #: the earlier) is dead-lettered as ``ts_ahead``; 0 = not checked. As Kafka's own
    #: ``log.message.timestamp.after.max.ms`` (3.6+), one hour (see ``adapters.codec``). A
    #: catalog entry further ahead of its record takes the record's time (``item_feed``)
    max_event_ahead_ms: int = 3_600_000
    #: a user event with the topic and ``event_id`` of one applied within this many seconds of
    #: the user's newest event is a producer duplicate, skipped and counted (0 = not checked;
    #: ``stream.domain.dedup``)
    dedup_window_s: int = 3600
    #: Burst coalescing: at most this many events per batch (a user's events in one batch: one
    #: profile write, one ranking). At low load a batch is what one fetch brought; under a
    #: backlog a fetch holds thousands, and larger batches coalesce more of each session.
    #: 4,096 rather than 1,024 (with the user group): 30,000-40,000-event drains of the full
    #: bench workload, interleaved, 5,478 / 4,726 / 5,677 / 4,167 events/s against 4,500 /
    #: 4,568 / 4,165 / 3,349 at 2,048, and 3,643 / 3,327 at 1,024 (history, "Twelfth Dec 6
    #: session"). Before, 1,024 rather than 256 (+25-33 % in drains, faust_batches).
    batch_max: int = 4096
    #: `refresh` records taken per fetch of the user group, at most (0: no bound): a stock-out
    #: or restock of a popular item sends one to every user who held it, and without a bound
    #: those queued ahead of every user event of the fetches after them (``user_group``)
    refresh_batch_max: int = 256
    #: what reads the user and control topics: "aiokafka", a bare consumer group
    #: (stream.adapters.user_group says why), or "faust", the Faust agent it replaced
    user_consumer: str = "aiokafka"
    batch_within_ms: int = 20
    #: records the consumer must hold beyond a batch for it to count as a backlog, which lets
    #: a batch fill up to 250 ms (stream.adapters.faust_batches.BACKLOG_MIN says why 16)
    batch_backlog_min: int = 16
    #: hand a fetch's records over oldest first across topics and partitions, not Faust's
    #: round-robin, so a batch holds a window of time (stream.adapters.event_time says why)
    event_time_order: bool = True
    #: under a backlog (a fetch of more than two batches) hand the records over partition by
    #: partition, each in event time: more of a shopper's session per batch (event_time.py)
    backlog_by_partition: bool = True
    #: the Qdrant serving copy's coalescing window: a user's lists within it become one point,
    #: built and written once (the `recommendations` topic is the real-time channel; the
    #: copy's lag is exported as recstream_qdrant_flush_lag_seconds). At a steady 500 events/s
    #: 100 ms wrote 30 % fewer points than 5 ms and cut the writer's CPU by ~40 %.
    qdrant_flush_ms: int = 100
    fetch_max_wait_ms: int = 20
    #: the same for the worker's followers (catalog/stock replica, `learned`, ranking profiles,
    #: the item group): none of them carries a user's event to its list, and each idle fetch
    #: costs the broker and the worker CPU that the user agent then lacks (see README)
    follower_fetch_max_wait_ms: int = 100
    feeds: tuple[str, ...] = ("for_you",)
    rebalance_timeout_s: float = 6.0
    #: the bundled broker only: a member silent this long leaves its group. That broker also
    #: holds every JoinGroup until half of it has passed (in 1 s steps), so it is the wait of
    #: every worker start, and of a group whose member was killed (README, "Configuration")
    session_timeout_s: float = 6.0
    #: a worker that cannot reach the broker this long exits non-zero (a supervisor restarts it)
    broker_down_exit_s: float = 30.0
    ranking_profile: str | None = None
    #: Pfeed: rank from the learned query→target lookup blended with co-occurrence (0 = off)
    pfeed: bool = True
    #: where `recstream model index` publishes the lookup (None: <data_dir>/lookup)
    lookup_dir: Path | None = None
    #: a lookup a worker builds itself (none published) is approximate above this many items,
    #: and checked (``stream.domain.lookup_ivf``; the same default as ``lookup.EXACT_MAX``)
    lookup_exact_max: int = 100_000
    #: relation strength = (w_lookup·lookup + w_cooc·co-occurrence) / weights present
    pfeed_weights: tuple[float, float] = (0.25, 1.0)
    #: freeze the start-up heap out of garbage collection once ready (stream.adapters.gc_pauses)
    gc_freeze: bool = True
    #: allocations (net, of container objects) between two youngest-generation collections once
    #: ready; 0 keeps Python's 700 (stream.adapters.gc_pauses)
    gc_gen0_threshold: int = 10_000
    #: the worker's event loops (its own and Faust's consumer thread's): "uvloop" or Python's
    #: own "asyncio" (stream.adapters.event_loop says why uvloop)
    event_loop: str = "uvloop"
    #: seconds between snapshots of what `learned` taught this worker (also taken at a clean
    #: stop), so a restart reads the topic on from there, not from its beginning; 0 = none
    #: (``stream.adapters.learned_snapshots``)
    learned_snapshot_s: float = 300.0
    #: observations of one source partition per `learned` record (``learning.learned_records``);
    #: 1 writes one record each in the format older workers read (for a rolling upgrade)
    learned_group_max: int = 64
    #: a folder shared by the deployment's workers where each also copies its snapshot, so a
    #: worker with an empty data dir starts from the newest valid one (None: local only)
    learned_snapshot_shared: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read RECSTREAM_* variables; unset ones keep the embedded defaults."""
        env = os.environ if env is None else env
        bootstrap = env.get("RECSTREAM_KAFKA_BOOTSTRAP") or ""
        flavour = env.get("RECSTREAM_KAFKA_FLAVOUR", "auto")
        if flavour not in ("auto", "tansu", "kafka"):
            raise ValueError(
                f"RECSTREAM_KAFKA_FLAVOUR must be auto, tansu or kafka, got {flavour!r}"
            )
        feeds = tuple(f for f in env.get("RECSTREAM_FEEDS", "for_you").split(",") if f)
        event_loop = env.get("RECSTREAM_EVENT_LOOP") or "uvloop"
        if event_loop not in EVENT_LOOPS:
            raise ValueError(
                f"RECSTREAM_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, got {event_loop!r}"
            )
        gc_gen0 = _int(env, "RECSTREAM_GC_GEN0_THRESHOLD", 10_000)
        if gc_gen0 < 0:
            raise ValueError(f"RECSTREAM_GC_GEN0_THRESHOLD must be >= 0, got {gc_gen0}")
        dedup_window_s = _int(env, "RECSTREAM_DEDUP_WINDOW_S", 3600)
        if dedup_window_s < 0:
            raise ValueError("RECSTREAM_DEDUP_WINDOW_S must be >= 0 (0: off)")
        ahead = _int(env, "RECSTREAM_MAX_EVENT_AHEAD_MS", 3_600_000)
        if ahead < 0:
            raise ValueError(f"RECSTREAM_MAX_EVENT_AHEAD_MS must be >= 0 (0: off), got {ahead}")
        return cls(
            kafka_bootstrap=bootstrap or DEFAULT_BOOTSTRAP,
            kafka_bootstrap_explicit=bool(bootstrap),
            kafka_flavour=flavour,
            kafka_security=KafkaSecurity(
                protocol=env.get("RECSTREAM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
                sasl_mechanism=env.get("RECSTREAM_KAFKA_SASL_MECHANISM") or None,
                sasl_username=env.get("RECSTREAM_KAFKA_SASL_USERNAME") or None,
                sasl_password=env.get("RECSTREAM_KAFKA_SASL_PASSWORD") or None,
                ssl_cafile=env.get("RECSTREAM_KAFKA_SSL_CAFILE") or None,
            ),
            qdrant_url=env.get("RECSTREAM_QDRANT_URL") or None,
            qdrant_api_key=env.get("RECSTREAM_QDRANT_API_KEY") or None,
            data_dir=Path(env.get("RECSTREAM_DATA_DIR") or "data"),
            metrics_port=_int(env, "RECSTREAM_METRICS_PORT", 0),
            topic_prefix=env.get("RECSTREAM_TOPIC_PREFIX", ""),
            partitions=_int(env, "RECSTREAM_PARTITIONS", 4),
            app_id=env.get("RECSTREAM_APP_ID", "recstream"),
            web_port=_int(env, "RECSTREAM_WEB_PORT", 6066),
            max_message_bytes=_int(env, "RECSTREAM_MAX_MESSAGE_BYTES", 64 * 1024),
            max_event_ahead_ms=ahead,
            dedup_window_s=dedup_window_s,
            batch_max=_int(env, "RECSTREAM_BATCH_MAX", 4096),
            refresh_batch_max=_non_negative(env, "RECSTREAM_REFRESH_BATCH_MAX", 256),
            user_consumer=_user_consumer(env.get("RECSTREAM_USER_CONSUMER") or "aiokafka"),
            batch_within_ms=_int(env, "RECSTREAM_BATCH_WITHIN_MS", 20),
            batch_backlog_min=_int(env, "RECSTREAM_BATCH_BACKLOG_MIN", 16),
            event_time_order=_int(env, "RECSTREAM_EVENT_TIME_ORDER", 1) != 0,
            backlog_by_partition=_int(env, "RECSTREAM_BACKLOG_BY_PARTITION", 1) != 0,
            qdrant_flush_ms=_int(env, "RECSTREAM_QDRANT_FLUSH_MS", 100),
            fetch_max_wait_ms=_positive(env, "RECSTREAM_FETCH_MAX_WAIT_MS", 20),
            follower_fetch_max_wait_ms=_positive(env, "RECSTREAM_FOLLOWER_FETCH_MAX_WAIT_MS", 100),
            feeds=feeds or ("for_you",),
            rebalance_timeout_s=_seconds(env, "RECSTREAM_REBALANCE_TIMEOUT_S", 6.0, 1.0),
            # at least 3 s, so the 1 s heartbeats can miss two
            session_timeout_s=_seconds(env, "RECSTREAM_SESSION_TIMEOUT_S", 6.0, 3.0),
            broker_down_exit_s=_seconds(env, "RECSTREAM_BROKER_DOWN_EXIT_S", 30.0, 1.0),
            ranking_profile=env.get("RECSTREAM_RANKING_PROFILE") or None,
            pfeed=_int(env, "RECSTREAM_PFEED", 1) != 0,
            gc_freeze=_int(env, "RECSTREAM_GC_FREEZE", 1) != 0,
            gc_gen0_threshold=gc_gen0,
            event_loop=event_loop,
            learned_snapshot_s=float(env.get("RECSTREAM_LEARNED_SNAPSHOT_S") or 300.0),
            learned_group_max=_positive(env, "RECSTREAM_LEARNED_GROUP_MAX", 64),
            learned_snapshot_shared=Path(env["RECSTREAM_LEARNED_SNAPSHOT_SHARED"])
            if env.get("RECSTREAM_LEARNED_SNAPSHOT_SHARED")
            else None,
            pfeed_weights=parse_weights(env.get("RECSTREAM_PFEED_WEIGHTS") or "0.25,1"),
            lookup_exact_max=_non_negative(env, "RECSTREAM_LOOKUP_EXACT_MAX", 100_000),
            lookup_dir=Path(env["RECSTREAM_LOOKUP_DIR"])
            if env.get("RECSTREAM_LOOKUP_DIR")
            else None,
        )

    @property
    def lookup_root(self) -> Path:
        """The published lookup's folder (shared by every worker that should rank alike)."""
        return self.lookup_dir or self.data_dir / "lookup"

    def topic(self, name: str) -> str:
        """Full topic name with the deployment prefix (several deployments can share a broker)."""
        return f"{self.topic_prefix}{name}"

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests, CLI overrides)."""
        return replace(self, **changes)  # type: ignore[arg-type]
