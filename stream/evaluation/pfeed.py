"""The Pfeed lookup inside the offline evaluation: the same blend the workers rank from.

A worker loads a published lookup or builds it from the catalog with the bundled encoder, then
keeps it fresh from catalog messages (``stream.adapters.pfeed_runtime``); the evaluator does the
same in-process, so "engine with Pfeed" vs "engine without" compares what the two settings of
``RECSTREAM_PFEED`` would serve. One lookup is built for all engine variants of a run (they read
the same catalog in the same order, so their catalog positions agree) the first time a list is
asked for; catalog messages arriving later are applied through ``LiveLookup`` like on a worker.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from stream.adapters.encoder import OnnxItemEncoder
from stream.adapters.live_lookup import LiveLookup
from stream.domain.blended import BlendedRelations, blend_into
from stream.domain.engine import Engine
from stream.domain.lookup import QueryTargetLookup
from stream.stage_bars import StageBars

K = 20
CHUNK = 256


class SharedLookup:
    """One lookup for every engine variant of an evaluation run."""

    def __init__(
        self,
        k: int = K,
        weights: tuple[float, float] = (0.25, 1.0),
        progress: bool = True,
        encoder: OnnxItemEncoder | None = None,
    ) -> None:
        self.k = k
        self.weights = weights
        self.progress = progress
        self._encoder = encoder
        self.engines: list[Engine] = []
        self.blends: list[BlendedRelations] = []
        self.pending: list[dict[str, Any]] = []
        self.live: LiveLookup | None = None
        self.build_seconds = 0.0
        #: items the lookup was built with (the rest arrived as catalog messages afterwards)
        self.built_ids: set[str] = set()

    def attach(self, engine: Engine) -> None:
        lookup_weight, cooc_weight = self.weights
        blend = blend_into(
            engine, None, lookup_weight=lookup_weight, cooccurrence_weight=cooc_weight
        )
        self.engines.append(engine)
        self.blends.append(blend)

    def observe_catalog(self, message: Mapping[str, Any], engine: Engine) -> None:
        """Every variant observes each catalog message; the first attached one records it."""
        if self.engines and engine is self.engines[0]:
            self.pending.append(dict(message))

    def ready(self) -> None:
        """Build on first use, then apply what arrived since (a no-op for a static catalog)."""
        if not self.pending or not self.engines:
            return
        messages, self.pending = self.pending, []
        if self.live is None:
            self._build(messages)
        else:
            self.live.apply(messages)

    def _build(self, messages: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        encoder = self._encoder or OnnxItemEncoder()
        catalog = self.engines[0].catalog
        latest = {str(m["item_id"]): m for m in messages}
        live_ids = [i for i in catalog.ids if i in latest and not latest[i].get("deleted")]
        emb = encoder.embed([latest[i] for i in live_ids], progress=self.progress)
        lookup = QueryTargetLookup(live_ids, emb, k=self.k)
        with StageBars(disable=not self.progress) as bars:
            lookup.build(CHUNK, progress=bars)
        self.built_ids = set(live_ids)
        self.live = LiveLookup(encoder, lookup, catalog)
        self.live.remember({i: encoder.tokenizer.encode(latest[i]) for i in live_ids})
        for engine, blend in zip(self.engines, self.blends, strict=True):
            if engine.catalog.ids != catalog.ids:
                raise RuntimeError("engine variants read the catalog in different orders")
            blend.set_lookup(self.live)
        self.build_seconds = time.perf_counter() - started


def row_diversity(lookup: QueryTargetLookup, built_ids: set[str]) -> dict[str, float]:
    """How many items the buy rows reach: the share of active items in another item's row, the
    most rows one target fills, and the share of items that arrived after the build (upserted
    from catalog messages) that entered another item's row — what hub-aware rows are for."""
    rows = lookup.rows["buy"]
    counts = np.bincount(rows[rows >= 0], minlength=len(lookup))
    active = lookup.active
    arrived = np.array([i not in built_ids for i in lookup.ids], dtype=bool) & active
    return {
        "targets_share": float((counts[active] > 0).mean()) if active.any() else 0.0,
        "max_rows_share": float(counts.max() / max(1, len(lookup) - 1)) if counts.size else 0.0,
        "arrived": float(arrived.sum()),
        "arrived_in_rows_share": float((counts[arrived] > 0).mean()) if arrived.any() else 0.0,
    }


def pfeed_notes(lookup: SharedLookup | None) -> list[str]:
    """What the report says about the Pfeed candidates of this run."""
    if lookup is None:
        return ["Pfeed off (--no-pfeed): every engine variant relates items by co-occurrence only."]
    size = len(lookup.live.lookup) if lookup.live is not None else 0
    return [
        f"Pfeed on: every engine variant blends the learned query→target lookup (bundled ONNX "
        f"encoder, top-{lookup.k} per item and role over {size:,} items, built in "
        f"{lookup.build_seconds:.1f} s) with online co-occurrence (weights {lookup.weights[0]:g} "
        f"/ {lookup.weights[1]:g}); `engine_realtime_no_pfeed` is the real-time engine on "
        "co-occurrence alone, with the same signal weights (fitted on the Pfeed engine's "
        "warm-up lists when no --profile is given).",
        *_diversity_note(lookup),
    ]


def _diversity_note(lookup: SharedLookup) -> list[str]:
    if lookup.live is None:
        return []
    rows = lookup.live.lookup
    div = row_diversity(rows, lookup.built_ids)
    hubs = f"hub-aware (CSLS, r over {rows.hub_k} nearest queries)" if rows.hub_k else "raw cosine"
    note = (
        f"Lookup rows at the end of the stream ({hubs}, buy role): {div['targets_share']:.1%} "
        f"of the items are a target in another item's row; the busiest target fills "
        f"{div['max_rows_share']:.1%} of the rows"
    )
    if div["arrived"]:
        note += (
            f"; of the {div['arrived']:,.0f} items that arrived after the build, "
            f"{div['arrived_in_rows_share']:.1%} entered another item's row"
        )
    return [note + "."]
