"""Per-worker replica of `catalog`, `stock` and `learned`: every partition, from the beginning.

Faust's GlobalTable does not replicate across workers (faust-streaming #283, seen here too), so
each worker runs its own consumer with no group, assigned every partition, and folds the
messages into its local read models: the numpy catalog, and (from `learned`) popularity and item
relations, so what any worker learned survives restarts and is the same on every worker.
Validation and dead-lettering of `catalog` and `stock` is done once across workers, by the item
group consumer (``item_group``); the replica silently skips what it rejects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from stream.adapters.follower import Follower
from stream.adapters.learned_snapshots import Applied, LearnedSnapshots
from stream.adapters.validation import SchemaError, Validators
from stream.domain.catalog import Catalog, StockChange
from stream.domain.item_feed import ItemFeed, bounded_time
from stream.domain.learning import Learner, observations_from_bytes
from stream.settings import Settings

log = logging.getLogger(__name__)

OnStockChange = Callable[[StockChange, dict[str, Any]], Awaitable[None]]
#: (kind "catalog" | "stock", message) after the catalog applied it (the Pfeed runtime's input)
OnItem = Callable[[str, dict[str, Any]], None]


class CatalogReplica:
    """Follows `catalog` + `stock` into a Catalog, then `learned` into the Learner.

    `learned` is read only once the catalog has caught up: its observations name items by id,
    and one naming an item the replica has not read yet would be lost."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        validators: Validators,
        on_stock_change: OnStockChange | None = None,
        learner: Learner | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.validators = validators
        self.on_stock_change = on_stock_change
        self.learner = learner
        self.feed = ItemFeed(catalog)  # the evaluator applies item messages through it too
        self.on_item: OnItem | None = None
        self.applied = 0
        self.skipped = 0
        self.unchanged = 0  # catalog messages that repeated their item's last one
        #: catalog messages dated too far ahead of their record, read with its time instead
        self.time_bounded = 0
        self._kinds = {settings.topic("catalog"): "catalog", settings.topic("stock"): "stock"}
        self.items = Follower(
            settings,
            list(self._kinds),
            self._on_item,
            "catalog-replica",
            wait_ms=settings.fetch_max_wait_ms,  # a stock-out is on the way to users' lists
        )
        self.learned: Follower | None = None
        #: per `learned` partition, the last record applied (what a snapshot resumes after)
        self.learned_applied: dict[int, Applied] = {}
        self.snapshots: LearnedSnapshots | None = None
        if learner is not None and settings.learned_snapshot_s > 0:
            self.snapshots = LearnedSnapshots(settings, settings.data_dir)
        self._snapshotting: asyncio.Task[None] | None = None
        self._snapshot_state: tuple[Any, ...] | None = None  # at the last periodic snapshot
        if learner is not None:
            self.learned = Follower(
                settings, [settings.topic("learned")], self._on_learned, "learned-replica"
            )

    @property
    def followers(self) -> list[Follower]:
        return [f for f in (self.items, self.learned) if f is not None]

    async def start(self, timeout: float = 60.0) -> None:
        await self.items.start()
        if self.learned is not None:
            if not await self.items.caught_up(timeout):
                raise RuntimeError(f"catalog replica did not catch up within {timeout:.0f} s")
            await self._start_learned(self.learned)

    async def _start_learned(self, learned: Follower) -> None:
        """From a valid snapshot's positions when there is one, else from the beginning."""
        if self.snapshots is not None and self.learner is not None:
            self.learned_applied = await self.snapshots.restore_into(self.learner)
        await learned.start({p: a.offset + 1 for p, a in self.learned_applied.items()})
        every = self.settings.learned_snapshot_s
        if self.snapshots is not None and every > 0:
            self._snapshotting = asyncio.create_task(self._snapshot_every(every), name="snapshots")

    async def _snapshot_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            if self.snapshots is None or self.learner is None or self.failed is not None:
                continue
            state = self._learned_state()
            if state == self._snapshot_state:
                continue  # nothing learned since the last one: the file is still exact
            try:
                await self.snapshots.save_soon(self.learner, dict(self.learned_applied))
                self._snapshot_state = state
            except Exception:  # never fatal: the next start reads more of the topic, that is all
                log.exception("learned snapshot not written")

    def _learned_state(self) -> tuple[Any, ...]:
        """Changes whenever the learner or the positions do (what a snapshot would differ in)."""
        assert self.learner is not None
        learner = self.learner
        offsets = tuple(sorted((p, a.offset) for p, a in self.learned_applied.items()))
        pending = sum(len(v) for v in learner.pending.values())
        return learner.applied, learner.duplicates, pending, offsets

    def save_snapshot(self) -> None:
        """Write what `learned` taught so far, now (a clean stop); a failure is logged."""
        if self.snapshots is None or self.learner is None or self.failed is not None:
            return
        try:
            self.snapshots.save(self.learner, self.learned_applied)
        except Exception:
            log.exception("learned snapshot not written")

    async def stop(self) -> None:
        if self._snapshotting is not None:
            self._snapshotting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshotting
        for follower in reversed(self.followers):
            await follower.stop()
        if self._snapshotting is not None:  # the learned follower had started: a clean stop
            self._snapshotting = None
            self.save_snapshot()

    @property
    def stale_stock(self) -> int:
        """Stock messages skipped as older than their item's latest (``ItemFeed``)."""
        return self.feed.stale_stock

    @property
    def failed(self) -> BaseException | None:
        """The exception that killed a follower, if any (the worker must then crash)."""
        for follower in self.followers:
            if follower.failed is not None:
                return follower.failed
        return None

    async def caught_up(self, timeout: float = 5.0) -> bool:
        """Every followed topic read to its end (see ``Follower.caught_up``)."""
        results = await asyncio.gather(*(f.caught_up(timeout) for f in self.followers))
        return all(results)

    async def _on_item(self, topic: str, record: ConsumerRecord[bytes, bytes]) -> None:
        await self._apply(self._kinds[topic], record.value, record.timestamp)

    async def _on_learned(self, topic: str, record: ConsumerRecord[bytes, bytes]) -> None:
        self._learn(record.value)
        self.learned_applied[record.partition] = Applied(
            record.offset, record.timestamp, record.key
        )

    async def _apply(self, kind: str, raw: bytes | None, published_ms: int | None = None) -> None:
        try:
            message = orjson.loads(raw or b"")
            self.validators.validate(kind, message)
        except (orjson.JSONDecodeError, SchemaError):
            self.skipped += 1  # dead-lettered by the item group consumer (``item_group``)
            return
        if kind == "catalog":
            message = self._bounded(message, published_ms)
        elif kind == "stock":  # ordered by ts (``ItemFeed``): one stamped hours ahead would
            # otherwise outrank every later level of its item until that time came
            bounded = bounded_time(message, published_ms, self.settings.max_event_ahead_ms)
            message = message if bounded is message else dict(bounded)
        if kind == "catalog" and self.feed.unchanged(message):
            self.unchanged += 1  # a full dump re-sending an item as it is: nothing to do
            return
        self.applied += 1
        applied = self.feed.apply(kind, message)
        if self.on_item is not None:
            if kind == "catalog":
                self.on_item(kind, message)
            for held in applied:
                if held.kind == "stock":  # (a deletion reached it as its catalog entry)
                    self.on_item("stock", dict(held.message))
        for held in applied:
            await self._stock_changed(held.change, dict(held.message))

    def _bounded(self, message: dict[str, Any], published_ms: int | None) -> dict[str, Any]:
        """The message with a ``ts`` no further ahead of its record than user events may be
        (``item_feed.bounded_time``); logged the first time and every 1,000th after."""
        bounded = bounded_time(message, published_ms, self.settings.max_event_ahead_ms)
        if bounded is message:
            return message
        if self.time_bounded % 1000 == 0:
            log.warning(
                "catalog item %r: ts %s is more than RECSTREAM_MAX_EVENT_AHEAD_MS=%d ahead of "
                "its record (%s); its freshness counts from the record's time (%d such so far)",
                message.get("item_id"), message.get("ts"), self.settings.max_event_ahead_ms,
                published_ms, self.time_bounded + 1,
            )  # fmt: skip
        self.time_bounded += 1
        return dict(bounded)

    def _learn(self, raw: bytes | None) -> None:
        assert self.learner is not None
        try:
            observations = observations_from_bytes(raw or b"", self.learner.own_echo)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            self.skipped += 1  # only workers write this topic; never let one record stop us
            log.debug("skipped a malformed observation on learned")
            return
        for obs in observations:
            self.learner.remote(obs)

    async def _stock_changed(self, change: StockChange, message: dict[str, Any]) -> None:
        """Every applied stock message, changed or not: the pipeline names refreshes after the
        message that put an item's stock where it is (``stock_refresh.StockOuts``)."""
        if self.on_stock_change is not None:
            await self.on_stock_change(change, message)

    async def lag(self) -> dict[tuple[str, str, int], int]:
        """Messages behind the high-water mark per followed partition (for metrics)."""
        out: dict[tuple[str, str, int], int] = {}
        for follower in self.followers:
            out.update(await follower.lag())
        return out
