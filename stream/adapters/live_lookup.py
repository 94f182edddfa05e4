"""Keeps a worker's query→target lookup fresh as `catalog` messages arrive.

A batch of catalog messages is tokenised; only items whose content tokens changed (or that are
new) are embedded, in one onnxruntime call, and upserted into the lookup: they get their own
rows and enter every row where they now belong. A deal/new flag flip changes no token, so it
costs no inference and no lookup work (feeds restrict targets at read time). Deleted items stop
being targets. Positions stay aligned with the worker's ``Catalog`` index, which is what
``ranking.rank`` passes to ``related``.

In three steps, so a serving worker's event loop never computes one (``PfeedRuntime.sync``):
``prepare`` (on the loop: which items the messages name, in catalog order), ``compute`` (in a
thread: the token check, the embedding and the upsert, on a copy of the lookup, and the
lookup's target idf) and ``install`` (on the loop: the swap, and the tokens it now reflects).
``apply`` runs all three in place, for start-up, tools and tests.

The token check ran in ``prepare`` until the fifth Dec 7 session: ~11 ms of the loop for 1,024
messages in one piece, on top of the replica taking them in (``stream.bench.catalog_churn``:
the longest loop stall of an update was those two back to back). In the thread it holds the
GIL at most a switch interval (5 ms) at a time. So did the idf the blend weighs lookup rows by
(``blended.target_idf``): made at the first ranking after each swap, ~3 ms at 20,000 items and
linear in the catalog.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.adapters.encoder import OnnxItemEncoder
from stream.domain.blended import target_idf
from stream.domain.catalog import Catalog
from stream.domain.lookup import EXACT_MAX, QueryTargetLookup


@dataclass
class Update:
    """Catalog changes on their way into the lookup: prepared on the event loop, computed in a
    thread (``result``: the updated copy of ``base``), installed on the loop."""

    base: QueryTargetLookup
    #: items whose messages arrived, in catalog order (``compute`` keeps those to embed: new
    #: content tokens, or an item the lookup lacks)
    order: list[str]
    messages: list[Mapping[str, Any]]  # their catalog messages
    deleted: list[str]
    result: QueryTargetLookup | None = None
    seconds: float = 0.0  # what ``compute`` took (wall clock)
    #: the content tokens of the items ``compute`` embedded (``install`` remembers them)
    tokens: dict[str, bytes] = field(default_factory=dict)

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

    def prepare(self, messages: Sequence[Mapping[str, Any]]) -> Update:
        """What ``messages`` may change (cheap, on the event loop): the items they name and the
        catalog items the lookup has never seen, in catalog order, and the deletions. Which of
        them really changed is ``compute``'s token check."""
        named: dict[str, Mapping[str, Any]] = {}
        deleted: list[str] = []
        for msg in messages:
            item_id = str(msg["item_id"])
            if msg.get("deleted"):
                deleted.append(item_id)
                named.pop(item_id, None)
                continue
            named[item_id] = msg
        n = len(self.lookup.ids)
        if n > len(self.catalog.ids) or (n and self.lookup.ids[n - 1] != self.catalog.ids[n - 1]):
            self.replace(self.lookup)  # append-only: cheap check
            n = len(self.lookup.ids)
        for item_id in self.catalog.ids[n:]:  # catalog items the lookup has never seen
            named.setdefault(item_id, self._from_catalog(item_id))
        where, end = self.catalog.index, len(self.catalog)
        order = sorted(named, key=lambda i: where.get(i, end))
        return Update(self.lookup, order, [named[i] for i in order], deleted)

    def compute(self, update: Update, in_place: bool = False) -> None:
        """Keep the update's items whose content tokens changed (or that the lookup lacks),
        embed them and enter them into a copy of the lookup (``in_place``: into the lookup
        itself), then make the copy's target idf. Reads nothing the event loop writes while it
        runs (the lookup in use, the remembered tokens: both change only in ``install``), so it
        runs in a thread while ranking goes on reading the lookup it copied."""
        started = time.perf_counter()
        self._changed(update)
        if not update.work:
            update.result = update.base
            return
        new = sum(1 for i in update.order if i not in update.base.index)
        result = update.base if in_place else update.base.copy(len(update.base) + new)
        if update.order:
            result.upsert(update.order, self.encoder.embed(update.messages))
        if update.deleted:
            result.remove(update.deleted)
        idf = target_idf(result)
        result.idf_kept = None if idf is None else (result.version, idf)
        update.result = result
        update.seconds = time.perf_counter() - started

    def _changed(self, update: Update) -> None:
        """Narrow ``update.order`` to the items to embed: the token check."""
        if not update.order:
            return
        tokens = self.encoder.tokenizer.encode_many(update.messages)
        known, index = self._content, update.base.index
        keep = []
        for j, item_id in enumerate(update.order):
            content = tokens[j].tobytes()
            if known.get(item_id) != content or item_id not in index:
                keep.append(j)
                update.tokens[item_id] = content
        update.order = [update.order[j] for j in keep]
        update.messages = [update.messages[j] for j in keep]

    def install(self, update: Update) -> None:
        """Serve what ``compute`` made (on the event loop: a swap)."""
        if update.result is None or update.base is not self.lookup:
            raise RuntimeError("a lookup update must be computed from the lookup in use")
        self._content.update(update.tokens)
        if update.result is not self.lookup:
            self.lookup = update.result
            self._generation += 1
        self.embedded = update.order

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
