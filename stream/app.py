"""Composition root: ``create_app(settings)`` wires broker, state, Qdrant, metrics and agents.

Nothing happens at import time; every worker, test and tool builds its own app from a Settings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import faust
import mode

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
from stream.adapters.runtime_metrics import RuntimeSampler
from stream.adapters.validation import get_validators
from stream.domain import (
    affinity,
    candidate_kernels,
    dense,
    diversity_kernel,
    relation_kernels,
    top_kernels,
    trending,
)
from stream.domain.engine import Engine
from stream.domain.ranking import load_ranking_profile
from stream.pipeline import Pipeline
from stream.plan import Durability, Record
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
    gc: GcPauses = field(init=False)

    def __post_init__(self) -> None:
        self.gc = GcPauses(self.metrics.gc_pause, self.metrics.gc_frozen)


class _Lifecycle(mode.Service):
    """Starts/stops the non-Faust parts with the Faust app, and crashes loudly if they die."""

    def __init__(self, rapp: RecstreamApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rapp = rapp
        self.sampler = RuntimeSampler(rapp.metrics, rapp)

    async def on_start(self) -> None:
        try:
            await self._start()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # a stop during start-up
            # a library's internal cancellation: mode would stop the worker quietly, exit 0
            die("start-up was cancelled from inside, not by a stop")

    async def _start(self) -> None:
        r = self.rapp
        r.metrics.serve(r.settings.metrics_port)
        await r.outputs.start()
        await r.replica.start()
        if r.items is not None:
            await r.items.start()
        await r.writer.start()
        if r.profiles is not None:
            await r.profiles.start()  # ends on the latest published profile before serving
        if not await r.replica.caught_up(timeout=60.0):
            raise RuntimeError("catalog replica did not catch up within 60 s")
        r.metrics.catalog_items.set(len(r.engine.catalog))
        log.info(
            "catalog replica ready: %d items, %d learned observations applied",
            len(r.engine.catalog),
            r.engine.learner.applied,
        )
        if r.pfeed is not None:
            await r.pfeed.start()  # the shared lookup, before the first list is ranked
        # the compiled ranking kernels: loaded from their on-disk cache (~0.2 s), or compiled
        # once after an install (~6 s), here rather than in the first user's ranking; in a
        # thread, so the consumer's heartbeats go on
        took = await asyncio.to_thread(relation_kernels.warm_up)
        took += await asyncio.to_thread(top_kernels.warm_up)
        took += await asyncio.to_thread(diversity_kernel.warm_up)
        took += await asyncio.to_thread(candidate_kernels.warm_up)
        took += await asyncio.to_thread(affinity.warm_up)
        took += await asyncio.to_thread(trending.warm_up)
        took += await asyncio.to_thread(dense.warm_up)  # the Qdrant points' user vector
        log.info("ranking kernels ready in %.2f s", took)
        r.gc.install()
        r.gc.set_gen0(r.settings.gc_gen0_threshold)
        if r.settings.gc_freeze:
            r.gc.freeze()  # what start-up built is not walked by every later full collection
        r.pipeline.ready.set()

    async def on_stop(self) -> None:
        r = self.rapp
        r.gc.uninstall()
        # bounded: a dead Qdrant must not hold up a supervisor's stop (it is a serving copy;
        # the lists are on the topic and each user's point is rewritten at their next event)
        await r.writer.stop(timeout=5.0)
        if r.profiles is not None:
            await r.profiles.stop()
        if r.items is not None:
            await r.items.stop()
        await r.replica.stop()
        await r.outputs.stop()
        if r.pfeed is not None:
            r.pfeed.close()
        r.sink.close()
        r.store.close()

    @mode.Service.task
    async def _watch(self) -> None:
        """A dead replica must not leave a worker serving stale stock: crash the worker."""
        while not self.should_stop:
            failure = self.rapp.replica.failed
            if failure is not None:
                die("catalog replica died", failure)
            if self.rapp.items is not None and self.rapp.items.failed is not None:
                die("item group consumer died", self.rapp.items.failed)
            if self.rapp.profiles is not None and self.rapp.profiles.failed is not None:
                die("ranking-profiles follower died", self.rapp.profiles.failed)
            await self.sampler.sample()
            await self.sleep(1.0)

    @mode.Service.task
    async def _pfeed(self) -> None:
        """Catalog changes into the lookup, hot reloads, Qdrant `items` writes (between batches)."""
        pfeed = self.rapp.pfeed
        while pfeed is not None and not self.should_stop:
            await self.sleep(pfeed.tick_s)
            if self.rapp.pipeline.ready.is_set():
                await pfeed.tick()

    @mode.Service.task
    async def _broker_watch(self) -> None:
        """Kafka clients retry a lost broker forever, so a worker would hang silently; instead
        it exits non-zero after ``broker_down_exit_s`` without an answer, and its supervisor
        restarts it (un-acknowledged batches are re-delivered then)."""
        limit = self.rapp.settings.broker_down_exit_s
        last_ok = time.monotonic()
        while not self.should_stop:
            await self.sleep(min(2.0, limit / 4))
            if await self.rapp.outputs.broker_reachable():
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > limit:
                die(f"broker {self.rapp.settings.kafka_bootstrap} unreachable for {limit:.0f} s")


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
    app.recstream_fetch_max_wait_ms = settings.fetch_max_wait_ms  # type: ignore[attr-defined]
    metrics = Metrics()
    engine = engine or Engine(
        feeds=settings.feeds, ranking=load_ranking_profile(settings.ranking_profile)
    )
    validators = get_validators()
    decoder = Decoder(validators, settings.max_message_bytes)
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

    def assigned() -> set[int]:
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
    # One agent for every user-keyed topic (co-partitioned): one batch at a time sees all of a
    # user's events, so a profile is read, updated and written by one step with no interleaving.
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

    async def on_rebalance(*_: Any, **__: Any) -> None:
        pipeline.stock.stale = True  # users moved between workers
        store.forget_assignment()  # re-read changelog tails before serving partitions again
        try:
            partitions = assigned()
        except Exception:  # consumer between generations: the batches recover what they need
            log.debug("no assignment to recover ahead of the batches", exc_info=True)
        else:
            store.recover_soon(partitions)  # now, not when each partition's first batch comes
            pipeline.stock.rebuild_soon()  # before a stock-out needs it (it waits for recovery)

    app.on_rebalance_complete.connect(on_rebalance)
    rapp = RecstreamApp(
        settings, app, pipeline, engine, metrics, replica, writer, sink, outputs, store, flavour,
        profiles,
    )  # fmt: skip
    rapp.pfeed = pfeed
    rapp.items = items
    app.add_dependency(_Lifecycle(rapp))
    return rapp


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

    def observe_delivery(records: Sequence[Record]) -> None:
        now_ms = time.time() * 1000.0
        for r in records:
            if r.timestamp_ms:
                metrics.observe_stage("delivery", max(0.0, now_ms - r.timestamp_ms) / 1000.0)

    handle_records = _fatal(name, handler, metrics)

    async def handle(events: Sequence[Any]) -> None:
        records = [record(fev) for fev in events]
        if time_delivery:
            observe_delivery(records)
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


EXIT_AGENT_FAILED = 70


def die(reason: str, exc: BaseException | None = None) -> None:
    """Log loudly, flush logs, exit the process so a supervisor restarts it."""
    log.critical("FATAL: %s", reason, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_AGENT_FAILED)
