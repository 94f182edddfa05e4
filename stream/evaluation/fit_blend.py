"""The Pfeed blend weight learned from the warm-up, like the signal weights.

How much the learned lookup should count against online co-occurrence depends on the shop: on
a catalog whose embeddings say little about what goes together, every lookup row added to a
query's relations pushes a co-occurrence partner out of the top. So instead of a fixed weight,
the warm-up lists are logged once per candidate lookup weight (the same purchases, ranked from
relations blended at that weight), signal weights are fitted for each, and the weight whose fit
has the best Recall@10 on the validation slice wins. 0 (co-occurrence alone) is always a
candidate, so the lookup is only used where it helps on this shop's own warm-up.
"""

from __future__ import annotations

from typing import Any

from stream.domain.blended import BlendedRelations
from stream.domain.engine import Engine
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.evaluation.fit_ranking import RankingFitter

#: lookup weights tried (co-occurrence weighs 1); the configured one is added
LOOKUP_WEIGHTS = (0.0, 1.0)


class BlendFitter:
    """One ``RankingFitter`` per lookup weight, all logging the same purchases."""

    def __init__(self, warm_index: int, orders_in_range: int, configured: float) -> None:
        weights = sorted({*LOOKUP_WEIGHTS, configured})
        self.fitters = {w: RankingFitter(warm_index, orders_in_range) for w in weights}
        self._variants: dict[float, BlendedRelations] = {}

    @classmethod
    def for_events(
        cls, events: list[dict[str, Any]], warm_index: int, configured: float
    ) -> BlendFitter:
        """Sized from the warm-up events alone, like ``RankingFitter.for_events``."""
        sized = RankingFitter.for_events(events, warm_index)
        out = cls(warm_index, 0, configured)
        for fitter in out.fitters.values():
            fitter.stride = sized.stride
        return out

    def log(
        self,
        index: int,
        ts: int,
        engine: Engine,
        profile: UserProfile | None,
        targets: set[str],
        blend: BlendedRelations,
    ) -> None:
        for weight, fitter in self.fitters.items():
            fitter.log(index, ts, engine, profile, targets, self.relations_at(blend, weight))

    def relations_at(self, blend: BlendedRelations, weight: float) -> BlendedRelations:
        """``blend`` at another lookup weight (same sources; its own cache of merged rows)."""
        variant = self._variants.get(weight)
        if variant is None:
            variant = self._variants[weight] = BlendedRelations(
                blend.cooccurrence, blend.lookup, weight, blend.cooccurrence_weight, blend.dehub
            )
        if variant.lookup is not blend.lookup:
            variant.set_lookup(blend.lookup)
        return variant

    def fit(self, base: RankingProfile) -> tuple[RankingProfile, dict[str, Any], float]:
        """The profile, what was learned and the lookup weight of the best validated fit."""
        results = {w: fitter.fit(base) for w, fitter in self.fitters.items()}
        scores = {w: validated(info) for w, (_, info) in results.items()}
        best = max(scores, key=lambda w: (scores[w], -w))  # ties: the lighter lookup
        profile, info = results[best]
        info["pfeed_lookup_weight"] = best
        info["pfeed_validation_recall"] = {f"{w:g}": round(v, 4) for w, v in scores.items()}
        return profile, info, best


def validated(info: dict[str, Any]) -> float:
    """Validation Recall@10 of what a fit hands back (its weights, or the hand ones it kept)."""
    recall = info.get("validation_recall")
    if not recall:
        return -1.0
    return float(max(recall["fitted"], recall["hand"]))
