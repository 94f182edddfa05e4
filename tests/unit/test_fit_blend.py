"""The Pfeed blend weight is chosen like the signal weights: by validated Recall@10."""

from __future__ import annotations

import numpy as np

from stream.domain.blended import BlendedRelations
from stream.domain.ranking import RankingProfile
from stream.domain.relations import CoOccurrence
from stream.domain.signals import SIGNALS
from stream.evaluation.fit_blend import BlendFitter, validated
from stream.evaluation.fit_ranking import LoggedList


def logs(seed: int, informative: bool) -> list[LoggedList]:
    """100 lists of 50 candidates; the bought item tops signal 2 when ``informative``, else it
    is drawn at random (no ranking can find it)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(100):
        values = rng.random((50, len(SIGNALS))).astype(np.float32)
        labels = np.zeros(50, dtype=bool)
        pick = int(np.argmax(values[:, 2])) if informative else int(rng.integers(50))
        labels[pick] = True
        out.append(LoggedList(i, i, values, labels, 1))
    return out


def test_the_weight_whose_lists_validate_best_wins() -> None:
    fitter = BlendFitter(warm_index=100, orders_in_range=100, configured=0.25)
    assert sorted(fitter.fitters) == [0.0, 0.25, 1.0]
    fitter.fitters[0.0].logs = logs(1, informative=False)
    fitter.fitters[0.25].logs = logs(2, informative=True)
    fitter.fitters[1.0].logs = logs(3, informative=False)
    profile, info, weight = fitter.fit(RankingProfile())
    assert weight == 0.25 and info["pfeed_lookup_weight"] == 0.25
    scores = info["pfeed_validation_recall"]
    assert scores["0.25"] > max(scores["0"], scores["1"])
    assert profile.name == "learned" and validated(info) == scores["0.25"]


def test_ties_go_to_the_lighter_lookup_and_no_evidence_scores_lowest() -> None:
    fitter = BlendFitter(warm_index=100, orders_in_range=100, configured=1.0)
    assert sorted(fitter.fitters) == [0.0, 1.0]
    for f in fitter.fitters.values():
        f.logs = logs(4, informative=True)
    _, _, weight = fitter.fit(RankingProfile())
    assert weight == 0.0
    assert validated({"outcome": "not enough logged purchases"}) == -1.0


def test_a_variant_follows_the_lookup_the_engine_swaps_in() -> None:
    cooc = CoOccurrence()
    blend = BlendedRelations(cooc, None, 0.25)
    fitter = BlendFitter(warm_index=100, orders_in_range=100, configured=0.25)
    variant = fitter.relations_at(blend, 1.0)
    assert variant.lookup is None and variant.lookup_weight == 1.0
    lookup = CoOccurrence()
    blend.set_lookup(lookup)
    assert fitter.relations_at(blend, 1.0) is variant and variant.lookup is lookup
    assert variant.cooccurrence is cooc
