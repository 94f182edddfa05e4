"""The worker's Pfeed: the published query→target lookup, loaded, kept fresh and hot-reloaded.

Shared, not per worker: every worker ranks from the version ``recstream model index`` published
under ``Settings.lookup_root`` (``RECSTREAM_LOOKUP_DIR``, default ``<data_dir>/lookup``, the
folder that command writes by default; point every worker of a deployment at one folder). The
lookup is a deterministic function of the encoder and the catalog, so two workers that load the
same version and read the same `catalog` topic hold the same rows.

Life cycle (all on the worker's event loop except the heavy parts, which run in a thread):

* while the catalog replica catches up, ``on_item`` only records the latest message per item;
* ``start`` (once the replica caught up, before the worker serves) loads the published version;
  if none exists it embeds the catalog with the bundled encoder and builds the lookup in a thread
  (5k items: ~0.6 s embedding + ~0.3 s build here), then publishes it so a restart or another
  worker on the same folder loads it instead. Items of the catalog that the published version
  lacks are embedded and upserted; items it has are trusted (their content tokens are
  remembered, so replayed catalog messages cost no inference);
* before each user batch (``sync``) and every ``TICK_S`` (``tick``) the catalog messages that
  arrived since go into the lookup, in bounded batches, through ``LiveLookup``: new or changed
  items get their rows and enter others' rows, deletions stop being targets. Each batch is
  computed in a thread beside the lookup in use and its rows written in at once
  (``stream.domain.lookup_patch``; a copy swapped in whole where it must be): the loop never
  waits for it (see ``sync``), so rows lag the catalog by one update. Stock needs no lookup work:
  ranking's eligibility is the catalog's stock mask at read time. Every ``RELOAD_S`` the tick
  polls the pointer file and swaps in a newly published version (loaded and aligned in a
  thread, after any update in flight), re-embedding items it lacks.

Known gap: an item whose content changed after the loaded version was published keeps its old
rows until its next catalog message or the next published version (versions carry no content
tokens to compare against).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from stream.adapters import lookup_store
from stream.adapters.encoder import OnnxItemEncoder
from stream.adapters.item_sync import ItemSync, make_item_index
from stream.adapters.live_lookup import LiveLookup, Update
from stream.adapters.qdrant_items import ItemIndex
from stream.adapters.token_ahead import TokensAhead
from stream.domain import lookup_ivf
from stream.domain.blended import BlendedRelations, blend_into
from stream.domain.dense import DIM, query_vector, user_vector
from stream.domain.engine import Engine
from stream.domain.lookup import QueryTargetLookup
from stream.domain.profile import UserProfile
from stream.settings import Settings

log = logging.getLogger(__name__)

TICK_S = 0.2
RELOAD_S = 5.0
#: catalog messages applied per tick: one onnxruntime batch, ~0.3 s of one core at most
APPLY_BATCH = 1024
#: a user batch starts an update only this long after the last one started (``sync``)
UPDATE_GAP_S = 0.2
#: the most of its time the update thread computes: after an update of s seconds the next
#: starts no sooner than s / UPDATE_DUTY after it started (a storm of catalog changes, or a
#: trickle into a lookup too large to update often, leaves the worker most of its core)
UPDATE_DUTY = 0.5
K = 20


class PfeedRuntime:
    """Owns the worker's LiveLookup and hands ranking a ``BlendedRelations`` over it."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        items: ItemSync | None = None,
        encoder: OnnxItemEncoder | None = None,
    ) -> None:
        self.root = settings.lookup_root
        self.exact_max = settings.lookup_exact_max
        self.engine = engine
        self.items = items
        self.encoder = encoder or OnnxItemEncoder()
        lookup_weight, cooc_weight = settings.pfeed_weights
        self.blended: BlendedRelations = blend_into(
            engine, None, lookup_weight=lookup_weight, cooccurrence_weight=cooc_weight
        )
        self.live: LiveLookup | None = None
        #: pending messages' token rows, made a slice a user batch before their update starts
        self.ahead = TokensAhead(self.encoder.tokenizer.encode)
        self.reloader = lookup_store.LookupReloader(self.root)
        self.pending: dict[str, dict[str, Any]] = {}
        #: the update computing in a thread, and what it applies
        self._job: asyncio.Future[None] | None = None
        self._running: tuple[Update, list[dict[str, Any]]] | None = None
        #: False: updates computed on the event loop, in place, as before (the bench's baseline)
        self.threaded = True
        self._started = 0.0  # (monotonic) when the last update started in the thread
        self._rest_until = 0.0  # (monotonic) no update starts before (``UPDATE_DUTY``)
        #: the last threaded update, start to install (the `..._last_update_seconds` gauge)
        self.last_update_seconds = 0.0
        self.source = "none"  # "published" or "built": what start found
        self.start_seconds = 0.0
        self._last_poll = 0.0
        self.tick_s = TICK_S

    @classmethod
    def for_worker(cls, settings: Settings, engine: Engine) -> PfeedRuntime:
        """The runtime a worker runs: bundled (or ``RECSTREAM_MODEL_DIR``) encoder, and the
        Qdrant `items` collection next to `users` (same URL, or an Edge shard)."""
        encoder = OnnxItemEncoder()

        def open_index() -> ItemIndex:
            url, key = settings.qdrant_url, settings.qdrant_api_key
            return make_item_index(url, key, settings.data_dir, encoder.dim)

        return cls(settings, engine, ItemSync(open_index), encoder)

    # -- input from the catalog replica ---------------------------------------------------------
    def on_item(self, kind: str, message: Mapping[str, Any]) -> None:
        """Replica hook (every `catalog` and `stock` message, after the catalog applied it)."""
        item_id = str(message["item_id"])
        if kind == "catalog":
            self.pending.pop(item_id, None)  # keep arrival order: re-insert at the end
            self.pending[item_id] = dict(message)
        elif self.items is not None and self.live is not None:
            self.items.set_stock(item_id, int(message["available"]))

    # -- start ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load (or build and publish) the lookup; call once the catalog replica caught up."""
        started = time.perf_counter()
        boot = self.pending
        self.pending = {}
        ids = list(self.engine.catalog.ids)
        lookup, contents, missing = await asyncio.to_thread(self._initial, boot, ids)
        self.live = LiveLookup(self.encoder, lookup, self.engine.catalog, self.exact_max)
        self.live.remember(contents)
        self.blended.set_lookup(self.live)
        self._published()
        # items the published version lacks, then what arrived while loading
        self.pending = {**{i: boot[i] for i in missing}, **self.pending}
        await self._catch_up()
        if self.items is not None:
            try:
                stored = await asyncio.to_thread(self.items.count)
            except Exception as exc:  # Qdrant down: write everything once it answers
                log.warning("Qdrant items unavailable at start (%s); syncing when it is", exc)
                stored = 0
            self._sync_all(boot, stored)
            # at full speed: nothing is served yet (a first sync of the demo's 23,652 items
            # took 7.6 s of its start paced for serving)
            await self.items.flush(duty=1.0)
        self.start_seconds = time.perf_counter() - started
        log.info(
            "pfeed lookup ready (%s, %d items, k=%d) in %.2f s",
            self.source,
            len(self.live.lookup),
            self.live.lookup.k,
            self.start_seconds,
        )

    def _initial(
        self, boot: dict[str, dict[str, Any]], catalog_ids: list[str]
    ) -> tuple[QueryTargetLookup, dict[str, np.ndarray], list[str]]:
        """(lookup aligned to ``catalog_ids``, tokens of the items it reflects, items to embed)."""
        # by id, not by arrival: replicas read the catalog's partitions in different orders, and
        # two workers that each build must hold the same rows (ties included)
        live_msgs = [boot[i] for i in sorted(boot) if not boot[i].get("deleted")]
        tokenizer = self.encoder.tokenizer
        path = lookup_store.current_path(self.root)
        if path is not None:
            lookup = lookup_store.load(path)
            self.reloader.loaded = path
            self.source = f"published {path.name}"
            known = [m for m in live_msgs if str(m["item_id"]) in lookup.index]
            missing = [i for i, m in boot.items() if i not in lookup.index or m.get("deleted")]
        else:
            ids = [str(m["item_id"]) for m in live_msgs]
            lookup = QueryTargetLookup(ids, self.encoder.embed(live_msgs), k=K)
            lookup.build(exact_max=self.exact_max)
            self.reloader.loaded = lookup_store.publish(lookup, self.root)
            self.source = f"built and published {self.reloader.loaded.name}" + _checked(lookup)
            known, missing = live_msgs, [i for i, m in boot.items() if m.get("deleted")]
        contents = {str(m["item_id"]): tokenizer.encode(m) for m in known}
        return lookup.aligned_to(catalog_ids), contents, missing

    def _sync_all(self, boot: dict[str, dict[str, Any]], stored: int) -> None:
        """Every catalog item into the `items` collection when it holds fewer points than the
        catalog (a new shard or server); otherwise only what ``sync`` embedded is written."""
        assert self.items is not None and self.live is not None
        if stored >= sum(1 for m in boot.values() if not m.get("deleted")):
            return
        for message in boot.values():
            self._queue_item(message)

    # -- running ----------------------------------------------------------------------------------
    async def tick(self) -> None:
        """Apply what arrived (waiting for the thread), poll for a new version, flush Qdrant."""
        if self.live is None:
            return
        await self.settle()
        now = time.monotonic()
        if now - self._last_poll >= RELOAD_S:
            self._last_poll = now
            await self._reload()
        if self.items is not None:
            await self.items.flush()

    def sync(self) -> None:
        """Before each user batch is ranked: install an update the thread finished, start the
        next one. Never waits: an update of ~1,000 items into a 68k-item lookup takes ~1.3 s
        of CPU, which on the event loop stalled every user batch behind it; ranking now reads
        the rows in use until the update is written in (``lookup_patch``) or swapped in
        whole. A few messages wait for ``UPDATE_GAP_S`` after the last start (an update has
        fixed costs: the embedding call, the journal written on the loop; and every new
        version re-makes the blend's rows), or for ``tick``; and no update starts before the
        last one's rest (``UPDATE_DUTY``). Outside an event loop (tools, tests) everything
        read so far is applied at once."""
        self._advance(gap=UPDATE_GAP_S)

    def _advance(self, gap: float) -> None:
        if self.live is None:
            return
        if self._job is not None:
            if not self._job.done():
                return
            self._install()
        try:
            loop = asyncio.get_running_loop() if self.threaded else None
        except RuntimeError:
            loop = None
        while self.pending and self._job is None:
            now = time.monotonic()
            recent = now - self._started < gap and len(self.pending) < APPLY_BATCH
            if loop is not None:  # (tokenised a slice a batch, while waiting too: token_ahead)
                ready = self.ahead.advance(self.pending, APPLY_BATCH)
                if recent or now < self._rest_until or not ready:
                    return
            batch = self._take()
            update = self.live.prepare(batch, self.ahead.take(batch))
            if loop is None or not update.work:
                self.live.compute(update, in_place=True)
                self._installed(update, batch)
            else:
                self._started = time.monotonic()
                self._job = loop.run_in_executor(None, self.live.compute, update)
                self._running = update, batch

    def rested(self) -> None:
        """Let the next update start at once, whatever the last one's rest (a bench's runs
        each start alike: a rest left by the run before would delay one by a varying amount)."""
        self._started = self._rest_until = 0.0

    @property
    def updating(self) -> bool:
        """Catalog messages read and not yet in the rows in use."""
        return self.pending_items > 0

    @property
    def pending_items(self) -> int:
        """How many (the `recstream_lookup_pending_items` gauge)."""
        return len(self.pending) + (len(self._running[1]) if self._running is not None else 0)

    async def settle(self) -> None:
        """Apply every catalog message read so far (the thread's updates awaited, not blocked
        on): ``start`` and ``tick``. Bounded by what is pending when called."""
        rounds = 2 + len(self.pending) // APPLY_BATCH
        for _ in range(rounds):
            rest = self._rest_until - time.monotonic()
            if rest > 0 and self.pending and self._job is None:
                await asyncio.sleep(rest)
            while self.live is not None and not self.ahead.advance(self.pending, APPLY_BATCH):
                await asyncio.sleep(0)  # (user batches between the slices)
            self._advance(gap=0.0)
            if self._job is None:
                return
            await self._finish()

    async def _finish(self) -> None:
        """Wait until no update is computing, installing each (a user batch may start one
        while this waits, so it loops; none starts between its return and the caller's
        next step)."""
        while self._job is not None:
            job = self._job
            await asyncio.wait([job])
            if self._job is job:  # (not installed by a user batch meanwhile)
                self._install()

    async def _catch_up(self) -> None:
        """Everything read so far, before the worker serves: each batch computed in place
        (nothing reads the lookup yet, so no copy) in a thread, so the consumer's heartbeats
        go on while a restart embeds thousands of items its published version lacks."""
        assert self.live is not None
        while self.pending:
            batch = self._take()
            update = self.live.prepare(batch)
            await asyncio.to_thread(self.live.compute, update, True)  # (no work: at once)
            self._installed(update, batch)

    def _take(self) -> list[dict[str, Any]]:
        batch = []
        for item_id in list(self.pending)[:APPLY_BATCH]:
            batch.append(self.pending.pop(item_id))
        return batch

    def _install(self) -> None:
        job, running = self._job, self._running
        assert job is not None and running is not None
        self._job = self._running = None
        job.result()  # the thread's error, if any, raised here
        self.last_update_seconds = time.monotonic() - self._started
        self._rest_until = self._started + running[0].seconds / UPDATE_DUTY
        self._installed(*running)

    def _installed(self, update: Update, batch: list[dict[str, Any]]) -> None:
        assert self.live is not None
        self.live.install(update)
        if self.items is not None:
            for message in batch:
                self._queue_item(message)

    def _queue_item(self, message: Mapping[str, Any]) -> None:
        assert self.items is not None and self.live is not None
        item_id = str(message["item_id"])
        catalog = self.engine.catalog
        idx = catalog.index.get(item_id)
        if message.get("deleted") or idx is None:
            self.items.delete(item_id)
            return
        vector = self.live.lookup.embeddings[2, idx]
        if float(np.abs(vector).sum()) == 0.0:
            return  # not embedded yet (applied by a later tick)
        self.items.put(message, vector.copy(), int(catalog.available[idx]))

    async def _reload(self) -> None:
        assert self.live is not None
        path = lookup_store.current_path(self.root)
        if path is None or path == self.reloader.loaded:
            return
        ids = list(self.engine.catalog.ids)

        def load() -> tuple[QueryTargetLookup, list[str]]:
            raw = lookup_store.load(path)
            return raw.aligned_to(ids), [i for i in ids if i not in raw.index]

        fresh, lacking = await asyncio.to_thread(load)
        await self._finish()  # an update computed from the lookup being replaced goes in first
        self.reloader.loaded = path
        self.live.replace(fresh)
        self.live.refill(lacking)  # items this worker knows that the new version does not
        self._published()
        log.info("pfeed lookup reloaded from %s (%d items re-embedded)", path.name, len(lacking))

    def _published(self) -> None:
        """Label the blend with the version in use (the `recstream_model_info` gauge)."""
        path = self.reloader.loaded
        if path is not None:
            self.blended.published = path.stem
            self.blended.built_at_s = path.stat().st_mtime if path.exists() else None

    # -- the user's Qdrant vector -----------------------------------------------------------------
    def user_vector(self, profile: UserProfile, now_ms: float) -> list[float]:
        """Recency-weighted mean of the user's query embeddings (the affinity sketch until the
        lookup is loaded or when no query has an embedding)."""
        if self.live is not None and self.live.lookup.embeddings.shape[2] == DIM:
            lookup = self.live.lookup
            vec = query_vector(profile, lookup.index, lookup.embeddings, now_ms)
            if vec is not None:
                return vec.tolist()
        return user_vector(profile, now_ms)

    def close(self) -> None:
        if self.items is not None:
            self.items.close()


def _checked(lookup: QueryTargetLookup) -> str:
    """What an approximate build's check measured, for the ready line ('' when exact)."""
    if not lookup.recall:
        return ""
    return f", approximate: sampled recall {lookup_ivf.described(lookup.recall)}"
