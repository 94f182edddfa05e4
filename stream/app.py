"""Composition root: ``create_app(settings)`` wires broker, state, Qdrant, metrics and agents.

Nothing happens at import time; every worker, test and tool builds its own app from a Settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import faust

from stream.adapters.changelog_store import ChangelogStore, changelog_name
from stream.adapters.coalescing_writer import CoalescingWriter
from stream.adapters.codec import Decoder
from stream.adapters.fault import inject_faults
from stream.adapters.faust_batches import BATCH_GAP_S, BatchFeeder, ConsumerLag
from stream.adapters.faust_config import faust_config
from stream.adapters.gc_pauses import GcPauses
from stream.adapters.item_group import ItemGroup
from stream.adapters.metrics import Metrics
from stream.adapters.outputs import OutputProducer
from stream.adapters.pfeed_runtime import PfeedRuntime
from stream.adapters.profile_dead_letters import profile_batch_handler
from stream.adapters.profile_runtime import ProfileRuntime
from stream.adapters.qdrant_sink import UserSink, make_user_sink
from stream.adapters.replica import CatalogReplica
from stream.adapters.user_group import UserGroup
from stream.adapters.validation import get_validators
from stream.domain.engine import Engine
from stream.domain.profile import DEFAULT_PROFILE_CONFIG
from stream.domain.ranking import load_ranking_profile
from stream.lifecycle import EXIT_AGENT_FAILED as EXIT_AGENT_FAILED
from stream.lifecycle import Lifecycle, die
from stream.pipeline import Pipeline
from stream.plan import Durability, Record
from stream.readiness import ASSIGNED_LOG
from stream.settings import CONTROL_TOPICS, ITEM_TOPICS, USER_TOPICS, Settings

log = logging.getLogger(__name__)


@dataclass
class RecstreamApp:
    """Everything one worker runs, built by ``create_app``."""

    settings: Settings
    faust_app: faust.App
    pipeline: Pipeline
    engine: Engine
    metrics: Metrics
    replica: CatalogReplica
    writer: CoalescingWriter
    sink: UserSink
    outputs: OutputProducer
    store: ChangelogStore
    flavour: str
    profiles: ProfileRuntime | None = None
    pfeed: PfeedRuntime | None = None
    items: ItemGroup | None = None
    #: the user topics' bare consumer (None: the Faust agent reads them)
    users: UserGroup | None = None
    gc: GcPauses = field(init=False)

    def __post_init__(self) -> None:
        self.gc = GcPauses(self.metrics.gc_pause, self.metrics.gc_frozen)


def create_app(
    settings: Settings, flavour: str = "kafka", engine: Engine | None = None
) -> RecstreamApp:
    """Build the Faust app, tables, agents and adapters for one worker.

    ``flavour`` is "tansu" when the bundled broker is in use (see ``topics.detect_flavour``);
    its workarounds stay off against Apache Kafka.
    """
    app = faust.App(
        f"{settings.topic_prefix}{settings.app_id}",
        **faust_config(settings, flavour),
        store="memory://",  # no Faust tables: state is a ChangelogStore (see its docstring)
        web_port=settings.web_port,
        # on a rebalance, finish the batch in hand (its outputs and changelog records are
        # delivered) before the partitions move, so the next owner recovers the latest state
        stream_wait_empty=True,
    )
    # with the user topics on their own group, Faust's consumer reads only `ranking-profiles`,
    # which no user waits on: it polls as seldom as the followers do (each idle fetch costs CPU)
    faust_wait_ms = (
        settings.fetch_max_wait_ms
        if settings.user_consumer == "faust"
        else settings.follower_fetch_max_wait_ms
    )
    app.recstream_fetch_max_wait_ms = faust_wait_ms  # type: ignore[attr-defined]
    app.recstream_no_tables = True  # type: ignore[attr-defined]  # (1 s less start-up)
    metrics = Metrics()
    engine = engine or Engine(
        feeds=settings.feeds,
        ranking=load_ranking_profile(settings.ranking_profile),
        profile_config=replace(
            DEFAULT_PROFILE_CONFIG, dedup_window_ms=settings.dedup_window_s * 1000.0
        ),
    )
    validators = get_validators()
    decoder = Decoder(
        validators,
        settings.max_message_bytes,
        settings.partitions,
        settings.max_event_ahead_ms or None,
    )
    outputs = OutputProducer(settings)
    sink = make_user_sink(settings.qdrant_url, settings.qdrant_api_key, settings.data_dir)
    writer = CoalescingWriter(
        sink,
        flush_ms=settings.qdrant_flush_ms,
        on_flush=metrics.on_qdrant_flush,
        on_call=metrics.on_qdrant_call,
        on_cpu=metrics.on_qdrant_cpu,
        on_build_cpu=partial(metrics.on_qdrant_cpu, part="build"),
    )
    replica = CatalogReplica(settings, engine.catalog, validators, learner=engine.learner)

    async def caught_up() -> bool:
        return await replica.caught_up(timeout=5.0)

    store = ChangelogStore(settings, settings.data_dir / "state")
    inject_faults(store)  # recovery tests only (RECSTREAM_FAULT_*); a no-op when unset
    user_topics = {settings.topic(t) for t in USER_TOPICS}
    users: UserGroup | None = None

    def assigned() -> set[int]:
        if users is not None:
            return users.partitions()
        return {tp.partition for tp in app.consumer.assignment() if tp.topic in user_topics}

    durability = Durability(
        changelog_name(settings), store.mark_applied, store.ensure_recovered, assigned
    )
    pipeline = Pipeline(
        engine, decoder, store, outputs.send, writer, metrics, caught_up, durability
    )
    replica.on_stock_change = pipeline.on_stock_change
    pipeline.profiles = profiles = ProfileRuntime(settings, engine, metrics)
    pipeline.learned_group_max = settings.learned_group_max
    pfeed = PfeedRuntime.for_worker(settings, engine) if settings.pfeed else None
    if pfeed is not None:
        replica.on_item = pfeed.on_item
        pipeline.user_vector = pfeed.user_vector
        pipeline.before_rank = pfeed.sync
    within = settings.batch_within_ms / 1000.0

    def rebalanced(partitions: set[int] | None) -> None:
        """After a rebalance; ``partitions`` None: the assignment could not be read."""
        log.info(ASSIGNED_LOG, "unknown" if partitions is None else sorted(partitions))
        pipeline.users_assigned = True
        pipeline.stock.stale = True  # users moved between workers
        store.forget_assignment()  # re-read changelog tails before serving partitions again
        if partitions is not None:
            store.recover_soon(partitions)  # now, not when each partition's first batch comes
            pipeline.stock.rebuild_soon()  # before a stock-out needs it (it waits for recovery)

    # One reader for every user-keyed topic (co-partitioned): one batch at a time sees all of a
    # user's events, so a profile is read, updated and written by one step with no interleaving.
    if settings.user_consumer == "aiokafka":
        handler = _fatal("users", pipeline.handle_user_batch, metrics)
        users = UserGroup(
            settings, USER_TOPICS + CONTROL_TOPICS, _timed_delivery(handler, metrics),
            rebalanced, flavour,
        )  # fmt: skip
    else:
        _add_agent(
            app,
            settings,
            "users",
            USER_TOPICS + CONTROL_TOPICS,
            pipeline.handle_user_batch,
            settings.batch_max,
            within,
            metrics,
            time_delivery=True,
        )

        async def on_rebalance(*_: Any, **__: Any) -> None:
            partitions: set[int] | None = None
            try:
                partitions = assigned()
            except Exception:  # consumer between generations: the batches recover the rest
                log.debug("no assignment to recover ahead of the batches", exc_info=True)
            rebalanced(partitions)

        app.on_rebalance_complete.connect(on_rebalance)
    # validation + dead letters of item records, once across workers (replicas apply them)
    items = ItemGroup(
        settings, ITEM_TOPICS, _fatal("items", pipeline.handle_item_batch, metrics),
        settings.batch_max, flavour,
    )  # fmt: skip

    _add_agent(  # validation + dead letters, once per record (followers apply them)
        app,
        settings,
        "profiles",
        ("ranking-profiles",),
        profile_batch_handler(pipeline),
        settings.batch_max,
        within,
        metrics,
    )

    rapp = RecstreamApp(
        settings, app, pipeline, engine, metrics, replica, writer, sink, outputs, store, flavour,
        profiles,
    )  # fmt: skip
    rapp.pfeed = pfeed
    rapp.items = items
    rapp.users = users
    app.add_dependency(Lifecycle(rapp))
    return rapp


def _timed_delivery(handler: Any, metrics: Metrics) -> Any:
    """``handler`` after observing each record's broker → pipeline time (``delivery``)."""

    async def handle(records: Sequence[Record]) -> None:
        _observe_delivery(records, metrics)
        await handler(records)

    return handle


def _observe_delivery(records: Sequence[Record], metrics: Metrics) -> None:
    now_ms = time.time() * 1000.0
    for r in records:
        if r.timestamp_ms:
            metrics.observe_stage("delivery", max(0.0, now_ms - r.timestamp_ms) / 1000.0)


def _add_agent(
    app: faust.App,
    settings: Settings,
    name: str,
    topics: tuple[str, ...],
    handler: Any,
    batch_max: int,
    within: float,
    metrics: Metrics,
    time_delivery: bool = False,
) -> None:
    """One agent over ``topics``. An agent that cannot proceed takes the worker down with a
    non-zero exit: the un-acked batch is re-delivered after restart (idempotent state), whereas
    Faust's in-process actor restart would skip it silently. ``time_delivery``: observe each
    record's broker → pipeline time (the ``delivery`` stage; user events only)."""
    logical = {settings.topic(t): t for t in topics}
    channel = app.topic(
        *logical, key_serializer="raw", value_serializer="raw", partitions=settings.partitions
    )

    def record(fev: Any) -> Record:
        m = fev.message
        stamp = int(m.timestamp * 1000) if m.timestamp else None
        return Record(logical[m.topic], m.partition, m.offset, m.key, m.value, stamp)

    handle_records = _fatal(name, handler, metrics)

    async def handle(events: Sequence[Any]) -> None:
        records = [record(fev) for fev in events]
        if time_delivery:
            _observe_delivery(records, metrics)
        await handle_records(records)

    async def agent(stream: Any) -> None:
        # batches grow while the consumer's fetches show more records (see faust_batches)
        lag = ConsumerLag(app.consumer.highwater)
        backlog_min = settings.batch_backlog_min
        feeder = BatchFeeder(handle, batch_max, within, BATCH_GAP_S, lag, backlog_min=backlog_min)
        await feeder.run(stream)

    agent.__name__ = f"{name}_agent"
    app.agent(channel, name=f"recstream.{name}")(agent)


def _fatal(name: str, handler: Any, metrics: Metrics) -> Any:
    """``handler`` timed per batch; one that raises takes the worker down (see ``_add_agent``)."""
    batch_seconds = metrics.batch_seconds.labels(name)

    async def handle(records: Sequence[Record]) -> None:
        started = time.perf_counter()
        try:
            await handler(records)
        except Exception as exc:
            die(f"agent {name} cannot proceed: {exc!r}", exc)
        batch_seconds.observe(time.perf_counter() - started)

    return handle
