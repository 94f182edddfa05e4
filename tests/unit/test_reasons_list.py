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


def test_sparse_feature_weights_read_as_the_dense_vector() -> None:
    from stream.domain.affinity import FeatureWeights

    rng = np.random.default_rng(4)
    dense = rng.choice([-1.0, 0.5, 2.0, *[0.0] * 27], size=50)
    ids = np.flatnonzero(dense)
    sparse = FeatureWeights(ids, dense[ids])
    feats = rng.integers(0, 60, size=(40, 12)).astype(np.int32)  # ids past the vector too
    padded = np.concatenate([dense, np.zeros(10)])
    assert sparse[feats].tobytes() == padded[feats].tobytes()
    assert liked_rows(feats, sparse) == liked_rows(feats, padded)
    assert FeatureWeights(ids[:0], dense[:0])[feats].shape == feats.shape


def test_a_list_reads_as_its_items_read_one_by_one() -> None:
    """Randomised: ``explain_list`` (one context per list: texts written once and shared) gives
    each item the reasons ``reasons_for`` gives it alone, ties between reasons included."""
    from stream.domain.reasons import GROUPS, ReasonInput, explain_list, reasons_for

    catalog = _catalog(30)
    rng = np.random.default_rng(9)
    queries = [[f"i{q}", ["view", "buy"][q % 2], NOW - q * 7 * MIN] for q in range(8)]
    profile = UserProfile("u", queries=queries, purchases={"i3": (2.0, NOW - 90 * MIN)})
    liked = rng.choice([0.0, 0.5, 1.0, -1.0], size=len(catalog.vocab_names) + 1)
    for _ in range(40):
        idxs = rng.choice(30, size=20, replace=False).tolist()
        grouped = rng.choice([0.0, 0.0, 0.25, 0.5, -0.5], size=(20, len(GROUPS))).tolist()
        sources = {i: (0.0, int(rng.integers(0, 8)), "view", NOW - 5 * MIN) for i in idxs[::2]}
        boosted = [("deal",) if rng.random() < 0.2 else () for _ in idxs]
        pinned = [bool(rng.random() < 0.1) for _ in idxs]
        feats = catalog.feature_ids[idxs]
        for feed in ("for_you", "deals_for_you"):
            ctx = ListContext(catalog, profile, NOW, feed)
            got = explain_list(idxs, grouped, boosted, pinned, feats, liked, sources, ctx)
            for n, idx in enumerate(idxs):
                mine = liked_features(feats[n].tolist(), liked[feats[n]].tolist())
                info = ReasonInput(
                    dict(zip(GROUPS, grouped[n], strict=True)), boosted[n], pinned[n]
                )
                alone = reasons_for(idx, info, mine, catalog, profile, sources, NOW, feed)
                assert got[n] == alone


def test_liked_rows_skip_nan_weights_and_keep_a_repeated_id() -> None:
    """The compiled pass's edge cases read as ``liked_features`` does: NaN is not liked, a
    repeated id counts each time, ties keep item order, no weights leave every row empty."""
    from stream.domain.affinity import FeatureWeights

    liked = np.array([0.0, np.nan, 2.0, 1.0, 2.0])
    feats = np.array([[1, 2, 3, 2, 4, 0], [0, 0, 0, 0, 0, 0]], dtype=np.int32)
    want = [liked_features(f, liked[f].tolist()) for f in feats.tolist()]
    assert want == [[2, 2, 4, 3], []]
    assert liked_rows(feats, liked) == want
    assert liked_rows(feats, FeatureWeights(np.arange(5), liked)) == want
    none = FeatureWeights(np.zeros(0, dtype=np.int64), np.zeros(0))
    assert liked_rows(feats, none) == [[], []]
