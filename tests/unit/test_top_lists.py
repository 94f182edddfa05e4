"""Exact top lists (and trending maxima) kept from the items that grew: every read equals a
full computation."""

from __future__ import annotations

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.features import item_features
from stream.domain.top_lists import best
from stream.domain.trending import Trending
from tests.unit import fast_rank_reference as reference


def catalog(n: int = 300) -> Catalog:
    out = Catalog()
    for i in range(n):
        out.upsert(
            {"item_id": f"i{i}", "attributes": {"category": f"c{i % 7}", "brand": f"b{i % 5}"}}
        )
    return out


def test_popular_and_per_feature_lists_are_exact_at_every_read() -> None:
    rng = np.random.default_rng(2)
    c = catalog()
    fids = [c.vocab[f] for f in ("category:c3", "brand:b1", "category:c0")]
    for step in range(1500):
        items = rng.choice(300, size=int(rng.integers(1, 4)), p=None).tolist()
        c.record_interaction(items, float(rng.choice([1.0, 1.0, 3.0])))
        if step % 97 == 0:  # stock moves: who may be listed changes
            c.set_stock(f"i{int(rng.integers(0, 300))}", int(rng.integers(0, 2)))
        if rng.random() < 0.3:
            k = int(rng.choice([10, 60, 150]))
            assert c.popular(k).tolist() == reference.popular(c, k).tolist()
        if rng.random() < 0.2:
            fid = fids[int(rng.integers(0, 3))]
            assert (
                c.top_for_feature(fid, 40).tolist()
                == reference.top_for_feature(c, fid, 40).tolist()
            )
        if rng.random() < 0.1:  # a ranking's read: several features in one call
            want = [i for f in fids for i in reference.top_for_feature(c, f, 40).tolist()]
            assert c.tops_for_features(np.array(fids), 40).tolist() == want
    assert c.popular(60).tolist() == reference.popular(c, 60).tolist()


def test_trending_top_is_exact_at_every_read_with_ties_and_rebases() -> None:
    rng = np.random.default_rng(3)
    t = Trending(capacity=200)
    ts = 1_700_000_000_000.0
    for _ in range(2000):
        ts += float(rng.integers(0, 4 * 3_600_000))  # long gaps: rebases happen
        t.observe(rng.choice(200, size=2).tolist(), 1.0, ts)  # equal weights: many exact ties
        if rng.random() < 0.3:
            assert t.top(30).tolist() == reference.trending_top(t, 30).tolist()
            everyone = np.arange(200)
            expected = t.scores[:, everyone].T / t.scores.max(axis=1)
            assert np.array_equal(t.values(everyone), expected)  # the kept maxima are exact


def test_best_is_one_total_order_whatever_the_ties() -> None:
    keys = np.array([5.0, 7.0, 5.0, 9.0, 5.0, 1.0])
    cands = np.arange(6)
    assert best(cands, 3, lambda c: keys[c]).tolist() == [3, 1, 0]
    assert best(cands, 4, lambda c: keys[c]).tolist() == [3, 1, 0, 2]
    assert best(cands, 10, lambda c: keys[c]).tolist() == [3, 1, 0, 2, 4, 5]


Listing = tuple[tuple[str, ...], bool]  # an item's features and whether it is deleted


def _edit(c: Catalog, rng: np.random.Generator, state: dict[str, Listing]) -> bool:
    """One random catalog message: a new price, title and deal flag (its price band, a
    feature, may change or not); a move to another category; a delete; a restore; or a new
    item. Returns whether it changed who may be listed (``state``: each item's listing)."""
    kind = str(rng.choice(["price", "move", "delete", "restore", "new"]))
    item_id = f"new{len(state)}" if kind == "new" else f"i{int(rng.integers(0, 300))}"
    features, deleted = state.get(item_id, (("category:c0",), False))
    category = next(f for f in features if f.startswith("category:"))
    if kind == "move":
        category = f"category:c{(int(category[-1]) + 1) % 3}"
    attributes = {"category": category.partition(":")[2], "brand": "b1"}
    if kind == "price":
        attributes["price"] = float(rng.choice([0.5, 0.7, 40.0]))
    deleted = {"delete": True, "restore": False}.get(kind, deleted)
    message = {"item_id": item_id, "title": f"{item_id} v{int(rng.integers(0, 100))}"}
    c.upsert(
        message
        | {
            "attributes": attributes,
            "flags": {"deal": bool(rng.random() < 0.5)},
            "deleted": deleted,
        }
    )
    now = (tuple(item_features(attributes)), deleted)
    changed = now != state.get(item_id)
    state[item_id] = now
    return changed


def test_lists_stay_exact_through_catalog_edits_and_falling_scores() -> None:
    """Edits that keep who may be listed change no list; edits that change it, stock moves
    and falling scores rebuild only the lists of their items (``PopularTops.invalidate``);
    every read stays exact."""
    rng = np.random.default_rng(5)
    c = Catalog()
    # three categories of ~100 items: more members than a list keeps (50), so an item that
    # falls out of a list must be replaced by one the list did not hold
    for i in range(300):  # every item of brand b1, so a brand list holds moved ones too
        c.upsert({"item_id": f"i{i}", "attributes": {"category": f"c{i % 3}", "brand": "b1"}})
    state = {f"i{i}": (("category:" + f"c{i % 3}", "brand:b1"), False) for i in range(300)}
    fids = [c.vocab[f] for f in ("category:c1", "brand:b1", "category:c0")]
    bumps = [0, 0]  # edits that started a new epoch, edits that did not
    for step in range(1500):
        weight = float(rng.choice([1.0, 1.0, 2.0, -4.0]))  # (< 0: a removal, a return)
        c.record_interaction(rng.choice(300, size=int(rng.integers(1, 4))).tolist(), weight)
        if step % 11 == 0:  # stock moves, for an item of any list
            c.set_stock(f"i{int(rng.integers(0, 300))}", int(rng.integers(0, 2)))
        if step % 29 == 0:  # (rarely enough that falling scores meet lists of the same epoch)
            version = c.version
            changed = _edit(c, rng, state)
            assert c.version == version + changed
            bumps[not changed] += 1
        if rng.random() < 0.3:
            fid = fids[int(rng.integers(0, 3))]
            assert (
                c.top_for_feature(fid, 50).tolist()  # (a list's whole depth: nothing spare)
                == reference.top_for_feature(c, fid, 50).tolist()
            )
            assert c.popular(100).tolist() == reference.popular(c, 100).tolist()
    assert min(bumps) >= 3  # both kinds of edit happened


def test_an_item_moved_deleted_or_out_of_stock_leaves_its_lists_at_once() -> None:
    c = Catalog()
    for i in range(120):
        c.upsert({"item_id": f"i{i}", "attributes": {"category": f"c{i % 2}", "brand": "b1"}})
    c.record_interaction([0] * 50, 1.0)  # i0 leads category c0 (and brand b1, and overall)
    c0, c1, b1 = (c.vocab[f] for f in ("category:c0", "category:c1", "brand:b1"))
    lists = (c.top_for_feature(c0, 50), c.top_for_feature(c1, 50), c.top_for_feature(b1, 50))
    assert [0 in x.tolist() for x in lists] == [True, False, True] and c.popular(1)[0] == 0
    c.upsert({"item_id": "i0", "attributes": {"category": "c1", "brand": "b1"}})  # moved
    assert 0 not in c.top_for_feature(c0, 50).tolist()
    assert c.top_for_feature(c1, 50)[0] == 0 and c.top_for_feature(b1, 50)[0] == 0
    c.set_stock("i0", 0)  # out
    assert 0 not in c.tops_for_features(np.array([c1, b1]), 50).tolist()
    assert 0 not in c.popular(100).tolist()
    c.set_stock("i0", 5)  # back
    assert c.top_for_feature(c1, 50)[0] == 0 and c.popular(1)[0] == 0
    c.upsert({"item_id": "i0", "attributes": {"category": "c1", "brand": "b1"}, "deleted": True})
    assert 0 not in c.top_for_feature(c1, 50).tolist() and c.popular(1)[0] != 0
    for lst, want in ((c.top_for_feature(c0, 50), c0), (c.top_for_feature(c1, 50), c1)):
        assert lst.tolist() == reference.top_for_feature(c, want, 50).tolist()
