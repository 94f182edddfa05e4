"""Reasons of a whole list (``explain_list``): per-list work shared, each item's reasons its own."""

from __future__ import annotations

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.profile import UserProfile
from stream.domain.reasons import ListContext, liked_features, liked_rows, readable, readable_names

NOW = 1_700_000_000_000
MIN = 60_000


def _catalog(n: int) -> Catalog:
    catalog = Catalog()
    for i in range(n):
        catalog.upsert(
            {
                "item_id": f"i{i}",
                "title": f"Item {i}",
                "attributes": {"manufacturer": 69, "brand": f"maker{i}"},
            }
        )
    return catalog


def test_the_name_table_follows_a_growing_vocabulary() -> None:
    catalog = _catalog(2)
    first = list(readable_names(catalog))
    assert first == [readable(name) for name in catalog.vocab_names]
    catalog.upsert({"item_id": "late", "title": "Late", "attributes": {"brand": "newco"}})
    table = readable_names(catalog)
    assert len(table) == len(catalog.vocab_names) > len(first)
    assert table == [readable(name) for name in catalog.vocab_names]
    assert "brand Newco" in table


def test_the_shared_query_list_never_names_the_item_itself() -> None:
    catalog = _catalog(3)
    profile = UserProfile(
        "u", queries=[["i0", "view", NOW - MIN], ["i1", "buy", NOW - 2 * MIN], ["x", "view", 0]]
    )
    ctx = ListContext(catalog, profile, NOW, "for_you")
    code = catalog.vocab["manufacturer:69"]  # a code: said through an item the user looked at
    # the same context serves every item of the list: each skips its own query
    assert ctx.liked_reason(0, [code]) == "similar to 'Item 1' you bought 2 min ago"
    assert ctx.liked_reason(1, [code]) == "similar to 'Item 0' you viewed 1 min ago"
    assert ctx.liked_reason(2, [code]) == "similar to 'Item 0' you viewed 1 min ago"
    assert ctx.liked_reason(2, []) == "similar to what you looked at"
    brand = catalog.vocab["brand:maker2"]
    assert ctx.liked_reason(2, [code, brand]) == "matches your interest in brand Maker2"


def test_liked_rows_are_each_rows_liked_features_ties_in_item_order() -> None:
    rng = np.random.default_rng(3)
    liked = rng.choice([-1.0, 0.5, 2.0, *[0.0] * 27], size=50)  # ties, dislikes, zeros
    feats = rng.integers(0, 50, size=(40, 12)).astype(np.int32)
    rows = liked_rows(feats, liked)
    assert rows == [liked_features(f, liked[f].tolist()) for f in feats.tolist()]
    assert any(len(r) > 1 for r in rows) and any(not r for r in rows)
