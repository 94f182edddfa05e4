"""The catalog's write path: popularity counts as ``record_interaction`` adds them."""

from __future__ import annotations

import numpy as np

from stream.domain.catalog import Catalog


def test_popularity_adds_as_numpy_add_at_does_and_the_popular_list_follows() -> None:
    """``record_interaction`` adds element by element (an event has one or a few items, where
    ``np.add.at`` costs ~10x more): duplicates count twice, sums are bit-for-bit the same, and
    the popular list (kept from the grown items) matches a full sort."""
    catalog = Catalog(capacity=4)
    for i in range(12):  # grows past the capacity
        catalog.upsert({"item_id": f"i{i}", "title": f"t{i}", "brand": f"b{i % 3}"})
    rng = np.random.default_rng(5)
    expected = np.zeros(12)
    for n in range(400):
        items = rng.integers(0, 12, size=int(rng.integers(1, 4))).tolist()
        weight = float(rng.choice([0.1, 0.5, 1.0, 3.0]))
        catalog.record_interaction(items, weight)
        np.add.at(expected, np.asarray(items), weight)
        if n % 37 == 0:
            key = expected + catalog.tiebreak[:12]
            assert catalog.popular(5).tolist() == np.argsort(-key, kind="stable")[:5].tolist()
    assert np.array_equal(catalog.popularity[:12], expected)
