"""The learned lookup plugs into ranking unchanged: relation candidates name their query item."""

from __future__ import annotations

import numpy as np

from stream.adapters.encoder import BUNDLED_MODEL_DIR, OnnxItemEncoder
from stream.domain.catalog import Catalog
from stream.domain.lookup import QueryTargetLookup
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile, rank

NOW = 1_700_000_000_000


def items() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(60):
        category = ["Dairy", "Milk"] if i % 3 == 0 else ["Produce", f"Fruit {i % 5}"]
        out.append(
            {
                "item_id": f"p{i}",
                "title": f"Item {i}",
                "attributes": {"category": category, "brand": "Private" if i % 2 else "National"},
                "flags": {"deal": False, "new": False},
            }
        )
    return out


def test_lookup_rows_feed_ranking_with_reasons_and_read_time_stock() -> None:
    catalog_msgs = items()
    emb = OnnxItemEncoder(BUNDLED_MODEL_DIR).embed(catalog_msgs)
    catalog = Catalog()
    for msg in reversed(catalog_msgs):  # a worker's index order differs from the lookup's
        catalog.upsert(msg)
    lookup = QueryTargetLookup([str(m["item_id"]) for m in catalog_msgs], emb, k=10).build()
    aligned = lookup.aligned_to(catalog.ids)
    profile = UserProfile("u1")
    profile.queries = [["p7", "buy", NOW - 60_000]]
    rp = RankingProfile(w_popularity=0.0, w_affinity=0.0, max_per_category=10)
    ranked = rank(profile, catalog, aligned, rp, NOW)
    related = set(catalog.ids[i] for i in aligned.related(catalog.index["p7"], "buy")[0])
    assert len(related) == 10
    top = [r for r in ranked if any("you bought" in reason for reason in r.reasons)]
    assert top and all(r.item_id in related for r in top)
    assert all("'Item 7'" in r.reasons[0] for r in top)
    # stock is applied at read time: the lookup row keeps the item, the ranking drops it
    gone = top[0].item_id
    catalog.set_stock(gone, 0)
    assert gone not in [r.item_id for r in rank(profile, catalog, aligned, rp, NOW)]
    assert catalog.index[gone] in aligned.related(catalog.index["p7"], "buy")[0].tolist()
    assert np.isfinite(emb).all()
