"""The rules' feature masks, kept item by item from the catalog's change log."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain import catalog as catalog_module
from stream.domain.catalog import PAD, Catalog
from stream.domain.scoring import FeatureMasks, masks_of

FEATURES = ("deal", "new", "brand:acme", "brand:zeta", "category:dairy", "colour:red", "absent")


def _message(rng: np.random.Generator, item: str) -> dict[str, object]:
    attributes = {
        "brand": str(rng.choice(["acme", "zeta", "omni"])),
        "category": str(rng.choice(["dairy", "bakery"])),
    }
    if rng.random() < 0.5:
        attributes["colour"] = "red"
    return {
        "item_id": item,
        "title": item,
        "attributes": attributes,
        "flags": {"deal": bool(rng.random() < 0.5), "new": bool(rng.random() < 0.2)},
    }


def _same(kept: FeatureMasks, catalog: Catalog) -> None:
    fresh = FeatureMasks(catalog)
    for feature in FEATURES:
        assert kept.mask(feature).tolist() == fresh.mask(feature).tolist(), feature
    everyone = np.arange(len(catalog), dtype=np.int64)
    assert kept.brand_of(everyone).tolist() == fresh.brand_of(everyone).tolist()


def test_kept_masks_equal_fresh_ones_through_edits_and_new_items() -> None:
    rng = np.random.default_rng(3)
    c = Catalog()
    for i in range(100):
        c.upsert(_message(rng, f"i{i}"))
    kept = masks_of(c)
    _same(kept, c)
    for step in range(400):
        c.upsert(_message(rng, f"i{int(rng.integers(0, 140))}"))
        if step % 13 == 0:
            _same(kept, c)
    _same(kept, c)
    brands = kept.brand_of(np.arange(len(c), dtype=np.int64))
    assert PAD not in brands.tolist()  # every item has a brand here


def test_a_mask_handed_out_does_not_change_under_its_holder() -> None:
    c = Catalog()
    for item in ("a", "b"):
        c.upsert({"item_id": item, "title": item, "attributes": {"brand": "acme"}})
    masks = masks_of(c)
    before = masks.mask("brand:acme")
    c.upsert({"item_id": "b", "title": "b", "attributes": {"brand": "zeta"}})  # b leaves
    after = masks.mask("brand:acme")  # (masks follow the catalog when read)
    assert after.tolist() == [True, False] and before.tolist() == [True, True]


def test_masks_the_change_log_left_behind_are_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalog_module, "MAX_CHANGES", 8)
    rng = np.random.default_rng(2)
    c = Catalog()
    c.upsert(_message(rng, "i0"))
    kept = masks_of(c)
    kept.mask("deal")
    for i in range(40):
        c.upsert(_message(rng, f"i{i % 15}"))
    _same(kept, c)
