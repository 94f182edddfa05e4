"""Keeps a worker's query→target lookup fresh as `catalog` messages arrive.

A batch of catalog messages is tokenised; only items whose content tokens changed (or that are
new) are embedded, in one onnxruntime call, and upserted into the lookup: they get their own
rows and enter every row where they now belong. A deal/new flag flip changes no token, so it
costs no inference and no lookup work (feeds restrict targets at read time). Deleted items stop
being targets. Positions stay aligned with the worker's ``Catalog`` index, which is what
``ranking.rank`` passes to ``related``.

In three steps, so a serving worker's event loop never computes one (``PfeedRuntime.sync``):
``prepare`` (on the loop: the token check, cheap), ``compute`` (in a thread: the embedding and
the upsert, journaling the rows it writes: ``lookup_patch``) and ``install`` (on the loop: the
journal written into the lookup in use, or a copy swapped in where the update needed one).
``apply`` runs all three in place, for start-up, tools and tests.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.adapters.encoder import OnnxItemEncoder
from stream.domain import lookup_patch
from stream.domain.catalog import Catalog
from stream.domain.lookup import EXACT_MAX, QueryTargetLookup


@dataclass
class Update:
    """Catalog changes on their way into the lookup: prepared on the event loop, computed in a
    thread (``result``: ``base`` staged, or an updated copy of it), installed on the loop."""

    base: QueryTargetLookup
    order: list[str]  # items to embed, in catalog order
    messages: list[Mapping[str, Any]]  # their catalog messages
    deleted: list[str]
    #: token rows the token check made, by item (not those rebuilt from the catalog)
    tokens: dict[str, np.ndarray] = field(default_factory=dict)
    result: QueryTargetLookup | None = None
    seconds: float = 0.0  # what ``compute`` took (wall clock)

    @property
    def work(self) -> bool:
        return bool(self.order or self.deleted)


class LiveLookup:
    def __init__(
        self,
        encoder: OnnxItemEncoder,
        lookup: QueryTargetLookup,
        catalog: Catalog,
        exact_max: int = EXACT_MAX,
    ):
        self.encoder = encoder
        self.catalog = catalog
        #: updates of a larger lookup recompute rows through its lists (``lookup_updates``)
        self.exact_max = exact_max
        self.lookup = self._aligned(lookup)
        self._content: dict[str, bytes] = {}
        self._generation = 0
        #: ids embedded by the last ``apply``/``refill`` (the Qdrant `items` sync re-reads them)
        self.embedded: list[str] = []
        #: False: every threaded update on a full copy, as before (the churn bench's baseline)
        self.staged = True

    @property
    def version(self) -> tuple[int, int]:
        """Moves on every change of the rows (``BlendedRelations`` re-merges on it), including
        a swap of the lookup object (whose own counter starts again)."""
        return self._generation, self.lookup.version

    def replace(self, lookup: QueryTargetLookup) -> None:
        """Serve a newly loaded lookup (hot reload), aligned with the catalog."""
        self.lookup = self._aligned(lookup)
        self._generation += 1

    def _aligned(self, lookup: QueryTargetLookup) -> QueryTargetLookup:
        out = lookup if lookup.ids == self.catalog.ids else lookup.aligned_to(self.catalog.ids)
        out.exact_max = self.exact_max
        return out

    def remember(self, contents: Mapping[str, np.ndarray]) -> None:
        """Content tokens the lookup already reflects (the items of a published version), so
        ``apply`` does not embed them again when their catalog messages are replayed."""
        for item_id, tokens in contents.items():
            self._content[item_id] = np.asarray(tokens, dtype=np.int64).tobytes()

    def refill(self, item_ids: Sequence[str]) -> int:
        """Re-embed items from their remembered tokens (items a newly loaded lookup lacks)."""
        known = [i for i in item_ids if i in self._content and i in self.catalog.index]
        self.embedded = known
        if known:
            tokens = np.stack([np.frombuffer(self._content[i], dtype=np.int64) for i in known])
            self.lookup.upsert(known, self.encoder.run(tokens))
        return len(known)

    def related(self, idx: int, role: str = "view") -> Any:
        """The ``RelatedItems`` protocol, so a worker can hand this object to ranking."""
        return self.lookup.related(idx, role)

    def apply(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Apply catalog messages already upserted into ``catalog``; returns items embedded.
        All at once, in place (start-up, tools, tests); a serving worker splits it up."""
        update = self.prepare(messages)
        self.compute(update, in_place=True)
        self.install(update)
        return len(update.order)

    def prepare(
        self, messages: Sequence[Mapping[str, Any]], ahead: Mapping[str, np.ndarray] | None = None
    ) -> Update:
        """What ``messages`` change (cheap, on the event loop): the items whose content tokens
        changed or that the lookup lacks, in catalog order, and the deletions. ``ahead``: token
        rows already made for some of these messages, by item (``token_ahead``)."""
        changed: dict[str, Mapping[str, Any]] = {}
        tokens: dict[str, np.ndarray] = {}
        deleted: list[str] = []
        tokenizer = self.encoder.tokenizer
        for msg in messages:
            item_id = str(msg["item_id"])
            if msg.get("deleted"):
                deleted.append(item_id)
                changed.pop(item_id, None)
                continue
            row = ahead.get(item_id) if ahead else None
            if row is None:
                row = tokenizer.encode(msg)
            content = row.tobytes()
            if self._content.get(item_id) == content and item_id in self.lookup.index:
                continue
            self._content[item_id] = content
            changed[item_id], tokens[item_id] = msg, row
        n = len(self.lookup.ids)
        if n > len(self.catalog.ids) or (n and self.lookup.ids[n - 1] != self.catalog.ids[n - 1]):
            self.replace(self.lookup)  # append-only: cheap check
            n = len(self.lookup.ids)
        for item_id in self.catalog.ids[n:]:  # catalog items the lookup has never seen
            changed.setdefault(item_id, self._from_catalog(item_id))
        order = sorted(changed, key=lambda i: self.catalog.index.get(i, len(self.catalog)))
        return Update(self.lookup, order, [changed[i] for i in order], deleted, tokens)

    def compute(self, update: Update, in_place: bool = False) -> None:
        """Embed the update's items and enter them into the lookup, staged (``in_place``:
        into the lookup itself). Reads nothing the event loop writes and writes no row, so it
        runs in a thread while ranking goes on reading the rows in use. (A changed item's
        embedding is written in place: a Qdrant user vector made meanwhile may use it.)"""
        started = time.perf_counter()
        if not update.work:
            update.result = update.base
            return
        new = sum(1 for i in update.order if i not in update.base.index)
        result = update.base
        if not in_place:  # (written into the lookup at ``install``; a copy where it must be)
            base = update.base
            staged = lookup_patch.stage(base, new) if self.staged else None
            result = staged or base.copy(lookup_patch.capacity_for(base, new))
        if update.order:
            rows = self._token_rows(update)
            result.upsert(update.order, self.encoder.embed(update.messages, tokens=rows))
        if update.deleted:
            result.remove(update.deleted)
        if isinstance(result, lookup_patch.StagedLookup):  # (a copy if it rewrote most rows)
            result = lookup_patch.settled(result)
        update.result = result
        update.seconds = time.perf_counter() - started

    def install(self, update: Update) -> None:
        """Serve what ``compute`` made (on the event loop, at once: the staged rows written
        into the lookup in use, or a copy swapped in)."""
        if update.result is None or update.base is not self.lookup:
            raise RuntimeError("a lookup update must be computed from the lookup in use")
        if isinstance(update.result, lookup_patch.StagedLookup):
            lookup_patch.install(update.result)  # (the rows it changed, into the lookup in use)
            self._generation += 1
        elif update.result is not self.lookup:
            self.lookup = update.result
            self._generation += 1
        self.embedded = update.order

    def _token_rows(self, update: Update) -> np.ndarray:
        """The update's token rows: the token check's, the items rebuilt from the catalog's
        encoded now."""
        encode = self.encoder.tokenizer.encode
        found = [update.tokens.get(item_id) for item_id in update.order]
        return np.stack(
            [encode(m) if r is None else r for r, m in zip(found, update.messages, strict=True)]
        )

    def _from_catalog(self, item_id: str) -> dict[str, Any]:
        """A catalog message rebuilt from the catalog's features: the original's tokens up to the
        catalog's per-item feature cap (used for items the lookup never saw a message of)."""
        idx = self.catalog.index[item_id]
        attributes: dict[str, Any] = {}
        for feature in self.catalog.features_of(idx):
            name, _, value = feature.partition(":")
            if name == "category":
                attributes.setdefault("category", []).append(value)
            elif name == "price_band" and value.isdigit():
                attributes[name] = int(value)
            else:
                attributes.setdefault(name, []).append(value)
        title = self.catalog.titles[idx]
        return {
            "item_id": item_id,
            "title": title if title != item_id else None,
            "attributes": attributes,
        }
