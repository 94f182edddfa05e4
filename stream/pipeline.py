"""The worker's event handling: decode → coalesce per user → engine step → outputs.

Agents stay thin and call ``Pipeline.handle_user_batch``; everything that talks to the outside
(table, topics, Qdrant, metrics) is passed in by the composition root (``stream.app``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from faust.streams import _current_event

from stream.adapters.coalescing_writer import CoalescingWriter
from stream.adapters.codec import DeadLetter, Decoder, Envelope
from stream.adapters.metrics import Metrics
from stream.adapters.qdrant_sink import UserPoint
from stream.adapters.state_store import StateStore
from stream.domain.catalog import StockChange
from stream.domain.dense import user_vector
from stream.domain.engine import Engine, Recommendation, Trigger
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile

log = logging.getLogger(__name__)

#: (logical topic, key, value) -> delivery future; awaited per batch by ``flush_outputs``
Send = Callable[[str, bytes, bytes], Awaitable["asyncio.Future[Any]"]]


class Holders:
    """Which local users currently hold which item: the users to refresh on a stock-out."""

    def __init__(self) -> None:
        self.by_item: dict[str, set[str]] = {}
        self.by_user: dict[str, tuple[str, ...]] = {}

    def update(self, user_id: str, items: Sequence[str]) -> None:
        for item in self.by_user.get(user_id, ()):
            users = self.by_item.get(item)
            if users is not None:
                users.discard(user_id)
                if not users:
                    del self.by_item[item]
        self.by_user[user_id] = tuple(items)
        for item in items:
            self.by_item.setdefault(item, set()).add(user_id)

    def holding(self, item_id: str) -> list[str]:
        return sorted(self.by_item.get(item_id, ()))


class Pipeline:
    """Runtime glue for one worker. Owns no I/O clients; gets send/store/writer injected."""

    def __init__(
        self,
        engine: Engine,
        decoder: Decoder,
        store: StateStore,
        send: Send,
        writer: CoalescingWriter | None,
        metrics: Metrics,
        caught_up: Callable[[], Awaitable[bool]],
    ) -> None:
        self.engine = engine
        self.decoder = decoder
        self.store = store
        self.send = send
        self.in_flight: list[asyncio.Future[Any]] = []
        self.writer = writer
        self.metrics = metrics
        self.caught_up = caught_up
        self.holders = Holders()
        #: after a (re)start or rebalance the index no longer matches the local users; it is
        #: rebuilt from the stored profiles' last lists before the next stock-out refresh
        self.holders_stale = True
        self.ready = asyncio.Event()

    # -- user events --------------------------------------------------------------------------
    async def handle_user_batch(self, topic: str, events: Sequence[Any]) -> None:
        """A burst of Faust events from one user topic: one profile write + one ranking per user."""
        await self.ready.wait()
        self.metrics.consumed.labels(topic).inc(len(events))
        self.metrics.batch_size.observe(len(events))
        known = self.engine.catalog.index.__contains__

        def decode(fev: Any) -> UserEvent | DeadLetter:
            m = fev.message
            received = int(m.timestamp * 1000) if m.timestamp else None
            env = Envelope(topic, m.partition, m.offset, m.key, m.value, received)
            return self.decoder.decode_user_event(env, known)

        def unknown_item(result: UserEvent | DeadLetter) -> bool:
            return isinstance(result, DeadLetter) and result.reason == "unknown_item"

        started = time.perf_counter()
        decoded = [(fev, decode(fev)) for fev in events]
        self.metrics.observe_stage("decode", time.perf_counter() - started)
        # an unknown item may only mean the catalog replica is behind: catch up, decode again
        if any(unknown_item(r) for _, r in decoded) and await self.caught_up():
            decoded = [(fev, decode(fev) if unknown_item(r) else r) for fev, r in decoded]
        by_user: dict[str, list[Any]] = {}  # user -> [last Faust event, [events in order]]
        for fev, result in decoded:
            if isinstance(result, DeadLetter):
                await self.dead_letter(result)
                continue
            entry = by_user.setdefault(result.user_id, [fev, []])
            entry[0] = fev
            entry[1].append(result)
        for user_id, (last_fev, user_events) in by_user.items():
            await self._step_user(topic, user_id, last_fev, user_events)
        await self.flush_outputs()

    async def _step_user(self, topic: str, user_id: str, fev: Any, events: list[UserEvent]) -> None:
        started = time.perf_counter()
        # Faust tables pick the RocksDB partition and changelog partition from the *current
        # event*; inside a take_events() batch that is the last event of the batch, which may
        # belong to another partition. Point it at this user's own last event while we write.
        token = _current_event.set(weakref.ref(fev))
        try:
            raw = self.store.get(user_id)
            state = UserProfile.from_bytes(raw) if raw is not None else None
            stepping = time.perf_counter()
            result = self.engine.step(state, user_id, events)
            stepped = time.perf_counter()
            if result.applied:
                self.store.set(user_id, result.state.to_bytes())
        finally:
            _current_event.reset(token)
        done = time.perf_counter()
        self.metrics.observe_stage("state", (stepping - started) + (done - stepped))
        self.metrics.observe_stage("engine", stepped - stepping)
        self.metrics.step_seconds.observe(done - started)
        self.metrics.processed.labels(topic).inc(len(events))
        if result.replayed:
            self.metrics.replayed.labels(topic).inc(result.replayed)
        produced_ms = int(fev.message.timestamp * 1000) if fev.message.timestamp else None
        await self._emit(result.state, result.recommendations, produced_ms)

    async def _emit(
        self, profile: UserProfile, recs: list[Recommendation], produced_ms: int | None
    ) -> None:
        for rec in recs:
            now_ms = int(time.time() * 1000)
            message = rec.to_message(now_ms, produced_ms)
            await self._output("recommendations", rec.user_id.encode(), orjson.dumps(message))
            self.metrics.recommendations.labels(rec.feed, rec.trigger.topic).inc()
            self.metrics.on_list(rec.feed, rec.profile, rec.variant, len(rec.items))
            if produced_ms is not None:
                self.metrics.latency.observe(max(0.0, (now_ms - produced_ms) / 1000.0))
            if rec.feed == "for_you":
                self.holders.update(rec.user_id, [item.item_id for item in rec.items])
                if self.writer is not None:
                    self.writer.submit(
                        UserPoint(
                            rec.user_id,
                            user_vector(profile, rec.trigger.ts),
                            {
                                "feed": rec.feed,
                                "items": message["items"],
                                "profile": rec.profile,
                                "variant": rec.variant,
                                "trigger": message["trigger"],
                                "emitted_at": now_ms,
                                "state_version": rec.state_version,
                            },
                        )
                    )
        self.metrics.users_holding.set(len(self.holders.by_user))

    async def dead_letter(self, dead: DeadLetter) -> None:
        self.metrics.dead_lettered.labels(dead.topic, dead.reason).inc()
        log.warning(
            "dead letter %s[%d]@%d: %s: %s",
            dead.topic,
            dead.partition,
            dead.offset,
            dead.reason,
            dead.error,
        )
        await self._output("dead-letters", dead.key or b"", orjson.dumps(dead.to_message()))

    async def _output(self, topic: str, key: bytes, value: bytes) -> None:
        self.in_flight.append(await self.send(topic, key, value))

    async def flush_outputs(self) -> None:
        """Wait until the broker has every output of this batch: only then may Faust ack the
        batch's input offsets (at-least-once). A delivery failure propagates and stops the
        worker, so the batch is re-delivered after restart."""
        if self.in_flight:
            started = time.perf_counter()
            # several agents share the list: wait for everything pending now (which includes
            # this caller's sends), then forget what is done
            await asyncio.gather(*self.in_flight)
            self.in_flight = [f for f in self.in_flight if not f.done()]
            self.metrics.observe_stage("send", time.perf_counter() - started)

    # -- item topics (validation + accounting; the replica applies them) ----------------------
    async def handle_item_batch(self, topic: str, events: Sequence[Any]) -> None:
        self.metrics.consumed.labels(topic).inc(len(events))
        for fev in events:
            msg = fev.message
            result = self.decoder.decode(
                Envelope(topic, msg.partition, msg.offset, msg.key, msg.value)
            )
            if isinstance(result, DeadLetter):
                await self.dead_letter(result)
            else:
                self.metrics.processed.labels(topic).inc()
        await self.flush_outputs()

    # -- stock --------------------------------------------------------------------------------
    def rebuild_holders(self) -> None:
        """Index the last list of every user whose state this worker currently holds."""
        holders = Holders()
        for user_id in self.store.keys():  # noqa: SIM118 (a StateStore)
            raw = self.store.get(user_id)
            if raw is not None:
                holders.update(user_id, UserProfile.from_bytes(raw).last_items)
        self.holders = holders
        self.holders_stale = False
        log.info("stock index rebuilt: %d users hold lists", len(holders.by_user))

    async def on_stock_change(self, change: StockChange, message: dict[str, Any]) -> None:
        """Out of stock: every local user holding the item gets a fresh list now."""
        catalog = self.engine.catalog
        self.metrics.catalog_out_of_stock.set(int((catalog.available[: len(catalog)] <= 0).sum()))
        if not change.went_out:
            return
        item_id = catalog.ids[change.index]
        if self.holders_stale:
            self.rebuild_holders()
        for user_id in self.holders.holding(item_id):
            raw = self.store.get(user_id)
            if raw is None:
                continue
            profile = UserProfile.from_bytes(raw)
            trigger = Trigger(str(message["event_id"]), "stock", int(message["ts"]))
            recs = self.engine.recommend(profile, trigger, now_ms=max(profile.last_ts, 0))
            self.metrics.stock_refreshes.inc()
            await self._emit(profile, recs, None)
        await self.flush_outputs()
