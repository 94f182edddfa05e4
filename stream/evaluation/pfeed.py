"""The Pfeed lookup inside the offline evaluation: the same blend the workers rank from.

A worker loads a published lookup or builds it from the catalog with the bundled encoder, then
keeps it fresh from catalog messages (``stream.adapters.pfeed_runtime``); the evaluator does the
same in-process, so "engine with Pfeed" vs "engine without" compares what the two settings of
``RECSTREAM_PFEED`` would serve. One lookup is built for all engine variants of a run (they read
the same catalog in the same order, so their catalog positions agree) the first time a list is
asked for; catalog messages arriving later are applied through ``LiveLookup`` like on a worker.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from stream.adapters.encoder import OnnxItemEncoder
from stream.adapters.live_lookup import LiveLookup
from stream.domain.blended import BlendedRelations, blend_into
from stream.domain.engine import Engine
from stream.domain.lookup import QueryTargetLookup

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
        starts = range(0, len(live_ids), CHUNK)
        for start in tqdm(starts, desc="pfeed lookup", disable=not self.progress, file=sys.stderr):
            lookup.recompute(np.arange(start, min(start + CHUNK, len(live_ids))), CHUNK)
        self.live = LiveLookup(encoder, lookup, catalog)
        self.live.remember({i: encoder.tokenizer.encode(latest[i]) for i in live_ids})
        for engine, blend in zip(self.engines, self.blends, strict=True):
            if engine.catalog.ids != catalog.ids:
                raise RuntimeError("engine variants read the catalog in different orders")
            blend.set_lookup(self.live)
        self.build_seconds = time.perf_counter() - started


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
        "warm-up lists when no --profile is given)."
    ]
