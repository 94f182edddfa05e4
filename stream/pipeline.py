"""The worker's service layer: a batch of messages in → (state writes, outputs, Qdrant work) out.

Agents stay thin and call ``Pipeline.handle_user_batch``; everything that talks to the outside
(state store, topics, Qdrant, metrics) is passed in by the composition root (``stream.app``), and
nothing here knows Faust: a message is a ``Record`` (topic, partition, offset, key, value, broker
timestamp), which the Faust adapter builds from its events.

Order of effects per batch, which is what makes at-least-once safe (README "Guarantees"):

1. decode + validate every message (bad ones become dead letters: data, not exceptions);
2. per user: read the profile once, fold all of the user's events in, rank once (coalescing);
3. send every output of the batch — lists, dead letters, observations for `learned`, erasure
   tombstones — and wait until the broker has all of them;
4. only then write the profiles (RocksDB + changelog) and hand the lists to the Qdrant writer.

A crash before 4 re-delivers the batch: the profiles were not written, so it is applied again and
its outputs repeat (identifiable by ``(user_id, trigger.event_id, state_version)``; observations
are de-duplicated by source offset). A crash after 4 loses nothing: all had been delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from stream.adapters.coalescing_writer import CoalescingWriter
from stream.adapters.codec import DeadLetter, Decoder, Envelope
from stream.adapters.metrics import Metrics
from stream.adapters.qdrant_sink import UserPoint
from stream.adapters.state_store import StateStore
from stream.domain.catalog import StockChange
from stream.domain.dense import user_vector
from stream.domain.engine import Engine, Recommendation
from stream.domain.erasure import Erasures
from stream.domain.events import UserEvent
from stream.domain.learning import GROUP_MAX, learned_records
from stream.domain.profile import UserProfile
from stream.plan import BatchPlan, Durability, Record, Send, UserWork
from stream.stock_index import StockIndex
from stream.stock_refresh import SEND_CHUNK, StockOuts, held_out_of_stock

if TYPE_CHECKING:
    from stream.adapters.profile_runtime import ProfileRuntime

log = logging.getLogger(__name__)


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
        durability: Durability | None = None,
    ) -> None:
        self.engine = engine
        self.durability = durability
        self.decoder = decoder
        self.store = store
        self.send = send
        self.writer = writer
        self.metrics = metrics
        self.caught_up = caught_up
        self.stock = StockIndex(store, durability)
        self.stock.on_rebuilt = self.check_held
        self.stock_outs = StockOuts()
        self.erasures = Erasures()
        self.ready = asyncio.Event()
        #: the user topics' partitions were assigned at least once (``stream.app``)
        self.users_assigned = False
        #: live ranking profiles (per-user variant, shadow lists); None = the engine's own
        self.profiles: ProfileRuntime | None = None
        #: the users' Qdrant vector (the Pfeed runtime swaps in the mean of query embeddings)
        self.user_vector: Callable[[UserProfile, float], Any] = user_vector
        #: observations per `learned` record (``learned_records``; 1 = one each, version 2)
        self.learned_group_max = GROUP_MAX
        #: read models to bring up to date before a batch is ranked (the Pfeed lookup applies
        #: the catalog messages the replica has read, so a new item is never ranked without rows)
        self.before_rank: Callable[[], None] | None = None

    # -- user events --------------------------------------------------------------------------
    async def handle_user_batch(self, records: Sequence[Record]) -> None:
        """A burst from the user and control topics: one profile write + one ranking per user."""
        await self.ready.wait()
        if self.durability is not None:
            await self.durability.recover({r.partition for r in records})
        self.metrics.batch_size.observe(len(records))
        for topic, n in Counter(r.topic for r in records).items():
            self.metrics.consumed.labels(topic).inc(n)
        decoded = await self._decode_all(records)
        if self.before_rank is not None:
            self.before_rank()
        plan = BatchPlan()
        work: dict[str, UserWork] = {}
        for record, result in decoded:
            if isinstance(result, DeadLetter):
                self._plan_dead_letter(plan, result)
                continue
            entry = work.get(result.user_id)
            if entry is None:  # (not setdefault: that built a UserWork per record)
                entry = work[result.user_id] = UserWork(record.partition)
            entry.partition = record.partition
            entry.events.append(result)
            stamp = record.timestamp_ms
            if stamp is not None and (entry.received_ms is None or stamp > entry.received_ms):
                entry.received_ms = stamp  # the newest record's: the list answers the newest
        with self.engine.learning_held():  # one refresh of the shared models per batch
            for user_id, entry in work.items():
                self._plan_user(plan, user_id, entry)
        await self.commit(plan)

    async def _decode_all(
        self, records: Sequence[Record]
    ) -> list[tuple[Record, UserEvent | DeadLetter]]:
        known = self.engine.catalog.index.__contains__

        def decode(r: Record) -> UserEvent | DeadLetter:
            env = Envelope(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp_ms)
            return self.decoder.decode_user_event(env, known)

        def unknown_item(result: UserEvent | DeadLetter) -> bool:
            return isinstance(result, DeadLetter) and result.reason == "unknown_item"

        started = time.perf_counter()
        decoded = [(r, decode(r)) for r in records]
        self.metrics.observe_stage("decode", time.perf_counter() - started)
        # an unknown item may only mean the catalog replica is behind: catch up, decode again
        if any(unknown_item(res) for _, res in decoded) and await self.caught_up():
            decoded = [(r, decode(r) if unknown_item(res) else res) for r, res in decoded]
        return decoded

    def _plan_user(self, plan: BatchPlan, user_id: str, work: UserWork) -> None:
        started = time.perf_counter()
        raw = self.store.get(user_id, partition=work.partition)
        state = UserProfile.from_bytes(raw) if raw is not None else None
        self.metrics.observe_stage("state_read", time.perf_counter() - started)
        if self.profiles is not None:
            self.profiles.before_step(user_id, work.events)
        # a forget wipes everything before it in the batch; what follows starts a new profile
        split = self.erasures.split(state, user_id, work.events)
        state, events = split.state, split.events
        if split.wipe:
            plan.forgotten.append(user_id)
            plan.writes.append((user_id, work.partition, None))
            plan.outputs.append(("recommendations", user_id.encode(), None))
        if state is None:  # a refresh re-ranks a stored profile; it never creates one
            events = [e for e in events if e.topic != "refresh"]
            state = self.erasures.fresh(user_id) if events else None
        recs: list[Recommendation] = []
        profile = state
        if events:
            stepping = time.perf_counter()
            result = self.engine.step(state, user_id, events)
            self.metrics.observe_stage("engine", time.perf_counter() - stepping)
            profile, recs = result.state, result.recommendations
            if result.applied or result.refreshed:
                # (replays need no write: local state is only written after its changelog
                # record was delivered, so the durable copy is never behind it)
                plan.writes.append((user_id, work.partition, profile.to_bytes()))
            if result.refreshed:
                self.metrics.stock_refreshes.inc()
            for (topic, why), n in Counter(result.skipped).items():
                counter = self.metrics.replayed if why == "replay" else self.metrics.duplicates
                counter.labels(topic).inc(n)
            plan.observations.extend(result.observations)
        self.metrics.step_seconds.observe(time.perf_counter() - started)
        for topic, n in Counter(e.topic for e in work.events).items():
            self.metrics.processed.labels(topic).inc(n)
        if profile is not None:
            for rec in recs:
                self._plan_list(plan, profile, rec, work.received_ms)
            if self.profiles is not None:
                plan.outputs.extend(self.profiles.after_step(profile, recs))

    def _plan_list(
        self, plan: BatchPlan, profile: UserProfile, rec: Recommendation, received_ms: int | None
    ) -> None:
        now_ms = int(time.time() * 1000)
        message = rec.to_message(now_ms, received_ms)
        plan.outputs.append(("recommendations", rec.user_id.encode(), orjson.dumps(message)))
        plan.lists.append((profile, rec, received_ms))
        self.metrics.recommendations.labels(rec.feed, rec.trigger.topic).inc()
        self.metrics.on_list(rec.feed, rec.profile, rec.variant, len(rec.items))
        if received_ms is not None:
            self.metrics.latency.observe(max(0.0, (now_ms - received_ms) / 1000.0))

    def _plan_dead_letter(self, plan: BatchPlan, dead: DeadLetter) -> None:
        self.metrics.dead_lettered.labels(dead.topic, dead.reason).inc()
        # coordinates and reason only: the error may quote ids or values (no personal data in
        # logs above DEBUG); the full error and the raw bytes are on `dead-letters`
        log.warning(
            "dead letter %s[%d]@%d: %s", dead.topic, dead.partition, dead.offset, dead.reason
        )
        log.debug("dead letter %s[%d]@%d: %s", dead.topic, dead.partition, dead.offset, dead.error)
        plan.outputs.append(("dead-letters", dead.key or b"", orjson.dumps(dead.to_message())))

    async def commit(self, plan: BatchPlan) -> None:
        """Deliver every output (and the changelog records of the new state), then write state
        locally, then feed Qdrant and the stock index.

        A delivery failure propagates and stops the worker, so the batch is re-delivered after
        restart with its state unwritten (see the module docstring)."""
        started = time.perf_counter()
        futures = [await self.send(t, key, value, None) for t, key, value in plan.outputs]
        # in source-offset order: readers of `learned` treat an older offset of a source
        # partition as a re-published duplicate (see stream.domain.learning)
        for key, record in learned_records(plan.observations, self.learned_group_max):
            futures.append(await self.send("learned", key, record, None))
        changelog: list[tuple[int, asyncio.Future[Any]]] = []
        if self.durability is not None:
            name = self.durability.changelog
            for user_id, partition, value in plan.writes:
                fut = await self.send(name, user_id.encode(), value, partition)
                changelog.append((partition, fut))
        if futures or changelog:
            await asyncio.gather(*futures, *(f for _, f in changelog))
        delivered = time.perf_counter()
        for user_id, partition, value in plan.writes:
            if value is None:
                self.store.delete(user_id, partition=partition)
            else:
                self.store.set(user_id, value, partition=partition)
        if self.durability is not None:
            last: dict[int, int] = {}
            for partition, fut in changelog:
                offset = getattr(fut.result(), "offset", -1)
                last[partition] = max(last.get(partition, -1), offset)
            for partition, offset in last.items():
                self.durability.delivered(partition, offset)
        if futures or changelog:
            self.metrics.observe_stage("send", delivered - started)
        if plan.writes:
            self.metrics.observe_stage("state_write", time.perf_counter() - delivered)
        for user_id in plan.forgotten:
            self.stock.drop(user_id)
            if self.writer is not None:
                self.writer.submit_delete(user_id)
        for profile, rec, _ in plan.lists:
            if rec.feed != "for_you":
                continue
            self.stock.update(rec.user_id, [item.item_id for item in rec.items], profile.lost)
            if self.writer is not None:
                # built at the flush, if no newer list replaced it (the profile is this
                # batch's own copy: the next batch decodes its own from the store)
                self.writer.submit_lazy(
                    rec.user_id, partial(_point, profile, rec, self.user_vector)
                )
        self.metrics.users_holding.set(len(self.stock))
        self.metrics.users_lost.set(len(self.stock.lost.by_user))

    # -- item topics (validation + accounting; the replica applies them) ----------------------
    async def handle_item_batch(self, records: Sequence[Record]) -> None:
        plan = BatchPlan()
        for r in records:
            self.metrics.consumed.labels(r.topic).inc()
            result = self.decoder.decode(Envelope(r.topic, r.partition, r.offset, r.key, r.value))
            if isinstance(result, DeadLetter):
                self._plan_dead_letter(plan, result)
            else:
                self.metrics.processed.labels(r.topic).inc()
        await self.commit(plan)

    # -- stock --------------------------------------------------------------------------------
    async def on_stock_change(self, change: StockChange, message: dict[str, Any]) -> None:
        """Out of stock (or deleted from the catalog): every local user holding the item gets
        a fresh list now. Back (in stock, or restored): so does every local user whose list
        lost it to the stock (``stream.domain.lost``).

        The re-ranking goes through the `refresh` control topic, keyed by user, so it runs in
        the user agent of the partition's owner: in order with the user's own events, and its
        new list is stored in the profile like any other (a restart indexes the right lists)."""
        catalog = self.engine.catalog
        item_id = catalog.ids[change.index]
        self.stock_outs.note(item_id, change, message)
        if not (change.went_out or change.came_back):
            return  # (a level that changes no list)
        self.metrics.catalog_out_of_stock.set(int((catalog.available[: len(catalog)] <= 0).sum()))
        if not self.ready.is_set():
            # before ready the replica replays history (a restart): asking the Faust consumer
            # for its assignment then crashed the worker (ConsumerNotStarted); the check of
            # the rebuilt index at ready refreshes such holders (``check_held``)
            return
        if change.came_back and not catalog.is_eligible(change.index):
            return  # restocked but still deleted (or the reverse): still not shown
        rebuilds = self.stock.rebuilds
        await self.stock.ensure()
        if self.stock.rebuilds != rebuilds or self.stock.unchecked:
            # rebuilt meanwhile, or not checked since its rebuild: the check of every held
            # or lost item covers this one (a no-op if the rebuild ran it already)
            await self.check_held()
            return
        # back: the users whose lists lost it (their new list forgets it, listed or not)
        users = self.stock.lost_by(item_id) if change.came_back else self.stock.holding(item_id)
        await self._refresh(dict.fromkeys(users, item_id))

    async def check_held(self) -> None:
        """Refresh every local user whose indexed list holds an item out of stock (or deleted)
        now, or lost one that is back now, once per rebuild of the index
        (``stream.stock_refresh``). Before ``ready`` it does nothing and the index stays
        unchecked (the catalog replica is still replaying the stock history then); the
        lifecycle calls it again once ready."""
        if not self.ready.is_set() or not self.stock.unchecked:
            return
        self.stock.unchecked = False
        catalog = self.engine.catalog
        held = await held_out_of_stock(self.stock.holders, catalog)
        back = await held_out_of_stock(self.stock.lost, catalog, back=True)
        if held or back:
            log.info(
                "%d local users hold items out of stock since their last list, %d lost items "
                "that are back",
                len(held), len(back),
            )  # fmt: skip
        await self._refresh(back | held)  # (one refresh a user: it re-ranks the whole list)

    async def _refresh(self, held: dict[str, str]) -> None:
        """A `refresh` record per user (user → the item whose stock change it answers), all
        sent."""
        now_ms = int(time.time() * 1000)
        futures = []
        for n, (user_id, item_id) in enumerate(held.items(), 1):
            body = self.stock_outs.refresh(user_id, item_id, now_ms)
            futures.append(await self.send("refresh", user_id.encode(), body, None))
            if n % SEND_CHUNK == 0:
                await asyncio.sleep(0)  # a check after a long downtime can send thousands
        if futures:
            await asyncio.gather(*futures)


def _point(
    profile: UserProfile,
    rec: Recommendation,
    vector: Callable[[UserProfile, float], Any] = user_vector,
) -> UserPoint:
    """The user's Qdrant point: a compact serving copy (ids and scores; the reasons travel on
    the `recommendations` topic), so building it stays cheap on the worker's threads."""
    ids = [item.item_id for item in rec.items]
    return UserPoint(
        rec.user_id,
        vector(profile, rec.trigger.ts),
        {
            "feed": rec.feed,
            "item_ids": ids,
            "items": [
                {"item_id": i, "score": round(item.score, 4)}
                for i, item in zip(ids, rec.items, strict=True)
            ],
            "profile": rec.profile,
            "variant": rec.variant,
            "trigger": rec.trigger.to_dict(),
            "state_version": rec.state_version,
        },
    )
