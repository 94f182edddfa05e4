"""A worker's non-Faust parts started and stopped with the Faust app, and the one way out when
something cannot proceed (``die``: exit 70, so a supervisor restarts the worker and the
un-acknowledged batch is re-delivered, instead of Faust's silent in-process restart).

Apart from the composition root (``stream.app``) because it is the worker's run-time behaviour:
start-up order, the engine prepared while Faust joins its group, watchdogs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import mode

from stream.adapters.runtime_metrics import RuntimeSampler
from stream.domain.kernels import WARM_UPS
from stream.readiness import SERVING_LOG

if TYPE_CHECKING:
    from stream.app import RecstreamApp

log = logging.getLogger(__name__)


class Lifecycle(mode.Service):
    """Starts/stops the non-Faust parts with the Faust app, and crashes loudly if they die."""

    def __init__(self, rapp: RecstreamApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rapp = rapp
        self.sampler = RuntimeSampler(rapp.metrics, rapp)
        self.started_at = time.monotonic()
        self._preparing: asyncio.Future[Any] | None = None

    async def on_start(self) -> None:
        self.started_at = time.monotonic()
        try:
            await self._start()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # a stop during start-up
            # a library's internal cancellation: mode would stop the worker quietly, exit 0
            die("start-up was cancelled from inside, not by a stop")
        self._preparing = self.add_future(self._prepare())

    async def _start(self) -> None:
        """What must run before Faust starts its consumer: the metrics port, the producer, the
        followers and the Qdrant writer."""
        r = self.rapp
        r.metrics.serve(r.settings.metrics_port)
        await r.outputs.start()
        await r.replica.start()
        if r.items is not None:
            await r.items.start()
        await r.writer.start()
        if r.users is not None:
            await r.users.start()  # joins the group while the engine is prepared

    async def _prepare(self) -> None:
        """Everything ranking needs, while Faust joins the consumer group.

        Joining takes ~5 s on the bundled broker (it holds a JoinGroup for half the session
        timeout) and ~3 s on Apache Kafka (``group.initial.rebalance.delay.ms``); this takes
        1-6 s (the catalog replica, the Pfeed lookup, the ranking kernels). Overlapped, a worker
        serves its first list that much sooner; no batch is handled before ``pipeline.ready``.
        A failure here takes the worker down like a failed agent, unless the worker is
        stopping: then the parts it was preparing are being closed under it, and a stop must
        end with exit 0."""
        try:
            await self._prepare_ranking()
        except asyncio.CancelledError:
            if not self.should_stop:
                die("preparing the engine was cancelled from inside, not by a stop")
            raise
        except Exception as exc:
            if self.should_stop:
                log.info("stopped while preparing the engine (%r)", exc)
                return
            die(f"the engine could not be prepared: {exc!r}", exc)

    async def _stop_preparing(self) -> None:
        """Cancel the preparation before the parts it uses are closed (mode stops a service's
        futures only after ``on_stop``). A step running in a thread finishes there, unused."""
        task = self._preparing
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)

    async def _prepare_ranking(self) -> None:
        r = self.rapp
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
        took = 0.0
        for warm_up in WARM_UPS:  # (one at a time: each in its own thread call)
            took += await asyncio.to_thread(warm_up)
        log.info("ranking kernels ready in %.2f s", took)
        r.gc.install()
        r.gc.set_gen0(r.settings.gc_gen0_threshold)
        if r.settings.gc_freeze:
            r.gc.freeze()  # what start-up built is not walked by every later full collection
        r.pipeline.ready.set()
        log.info(SERVING_LOG, time.monotonic() - self.started_at)
        # an index rebuilt at an assignment before now was not checked against the stock then
        await r.pipeline.check_held()

    async def on_stop(self) -> None:
        await self._stop_preparing()
        r = self.rapp
        if r.users is not None:  # first: the batch in hand still has its producer and writer
            await r.users.stop(finish=r.pipeline.ready.is_set())
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
            if self.rapp.users is not None and self.rapp.users.failed is not None:
                die("user group consumer died", self.rapp.users.failed)
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


EXIT_AGENT_FAILED = 70


def die(reason: str, exc: BaseException | None = None) -> None:
    """Log loudly, flush logs, exit the process so a supervisor restarts it."""
    log.critical("FATAL: %s", reason, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_AGENT_FAILED)
