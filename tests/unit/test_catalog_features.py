"""Which items carry a feature, through creates, updates in any order and deletes."""

from __future__ import annotations

import random

from stream.domain.catalog import Catalog


def _item(i: int, brand: str) -> dict[str, object]:
    return {"item_id": f"sku-{i}", "title": f"Item {i}", "attributes": {"brand": brand}}


def _carrying(catalog: Catalog, brand_feature: str) -> list[str]:
    fid = catalog.vocab[brand_feature]
    return [catalog.ids[i] for i in catalog.members_of(fid).tolist()]


def test_updates_in_any_order_move_items_between_features_once() -> None:
    catalog = Catalog()
    for i in range(300):
        catalog.upsert(_item(i, "acme"))
    (acme,) = [f for f in catalog.vocab if "acme" in f]
    order = list(range(300))
    random.Random(7).shuffle(order)
    for i in order:  # re-published in another order: every item switches brand
        catalog.upsert(_item(i, "other" if i % 3 == 0 else "acme"))
    for i in order[:50]:  # and again, unchanged
        catalog.upsert(_item(i, "other" if i % 3 == 0 else "acme"))
    (other,) = [f for f in catalog.vocab if "other" in f]
    assert sorted(_carrying(catalog, acme)) == sorted(f"sku-{i}" for i in range(300) if i % 3)
    assert sorted(_carrying(catalog, other)) == sorted(f"sku-{i}" for i in range(0, 300, 3))
    # each item once, in the order it got the feature (the 50 re-published went last)
    carrying = _carrying(catalog, acme)
    assert len(carrying) == len(set(carrying))
    assert carrying[-1] == f"sku-{[i for i in order[:50] if i % 3][-1]}"
    assert catalog.top_for_feature(catalog.vocab[other], 500).size == 100
