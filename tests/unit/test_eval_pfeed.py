"""The evaluation with and without the Pfeed lookup: same JSON shape, one extra method."""

from __future__ import annotations

from typing import Any

import numpy as np

from stream.domain.blended import BlendedRelations
from stream.domain.lookup import QueryTargetLookup
from stream.domain.ranking import RankingProfile
from stream.evaluation.methods import NO_PFEED, EngineMethod
from stream.evaluation.pfeed import SharedLookup, row_diversity
from stream.evaluation.prequential import EvalConfig, evaluate

HOUR = 3600 * 1000
COMMODITIES = ["soft drinks", "bag snacks", "cheese", "soup", "yogurt", "coffee"]


def catalog(n: int = 36) -> list[dict[str, Any]]:
    return [
        {
            "topic": "catalog",
            "item_id": f"g{i}",
            "ts": 0,
            "title": COMMODITIES[i % 6],
            "attributes": {"category": ["grocery", COMMODITIES[i % 6]], "brand": "National"},
        }
        for i in range(n)
    ]


def orders(users: int = 8) -> list[dict[str, Any]]:
    events = []
    for step in range(6):
        for u in range(users):
            items = [{"item_id": f"g{(u * 5 + step * 7) % 36}"}, {"item_id": f"g{(u + step) % 36}"}]
            events.append(
                {
                    "topic": "orders",
                    "event_id": f"o{step}-{u}",
                    "user_id": f"u{u}",
                    "ts": (step * users + u) * HOUR,
                    "items": items,
                }
            )
    return events


def test_report_has_the_no_pfeed_engine_only_when_pfeed_is_on() -> None:
    rp = RankingProfile(size=10)
    on = evaluate(catalog(), orders(), EvalConfig("synthetic", ranking=rp, progress=False))
    assert NO_PFEED in on["methods"] and "engine_realtime" in on["methods"]
    assert on["methods"][NO_PFEED]["all"]["recall@10"] >= 0.0  # same JSON shape
    assert any("Pfeed on" in note for note in on["notes"])
    assert any(NO_PFEED in v for v in on["notes"])  # a verdict against co-occurrence alone
    cfg = EvalConfig("synthetic", ranking=rp, progress=False)
    cfg.pfeed = False
    off = evaluate(catalog(), orders(), cfg)
    assert NO_PFEED not in off["methods"]
    # without Pfeed the real-time engine *is* the co-occurrence engine of the first run
    assert off["methods"]["engine_realtime"]["all"] == on["methods"][NO_PFEED]["all"]


def test_one_lookup_serves_every_variant_and_changes_what_they_rank() -> None:
    shared = SharedLookup(progress=False)
    rp = RankingProfile(size=10, w_popularity=0.0, w_affinity=0.0)
    pfeed = EngineMethod("engine_realtime", rp, 0, lookup=shared)
    batch = EngineMethod("engine_batch", rp, HOUR, lookup=shared)
    plain = EngineMethod(NO_PFEED, rp, 0)
    for message in catalog():
        for method in (pfeed, batch, plain):
            method.observe(message)
    first = orders()[0]
    for method in (pfeed, batch, plain):
        method.observe(first)
    with_lookup = pfeed.recommend("u0", first["ts"] + 1, 10)
    without = plain.recommend("u0", first["ts"] + 1, 10)
    assert shared.live is not None and len(shared.live.lookup) == 36
    assert isinstance(batch.engine.relations, BlendedRelations)
    assert batch.engine.relations.lookup is shared.live  # built once, shared
    assert with_lookup != without


def test_row_diversity_counts_targets_and_arrivals_by_hand() -> None:
    """4 items on a line, k=1, raw rows (hub_k=0), queries = targets: a=(1,0), b=(.8,.6),
    c=(.6,.8), d=(0,1). Rows: a→b (.8 > .6 > 0), b→c (.96 > .8), c→b (.96), d→c (.8).
    Targets: b, c = 2 of 4 items; c fills 2 of the 3 other rows; of the arrivals c and d
    (not in the build), c entered a row, d did not."""
    vec = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    lookup = QueryTargetLookup(list("abcd"), np.stack([vec, vec, vec]), k=1, hub_k=0).build()
    assert [lookup.related(i, "buy")[0].tolist() for i in range(4)] == [[1], [2], [1], [2]]
    div = row_diversity(lookup, built_ids={"a", "b"})
    assert div == {
        "targets_share": 0.5,
        "max_rows_share": 2 / 3,
        "arrived": 2.0,
        "arrived_in_rows_share": 0.5,
    }
