"""Candidates and ranking: business filters, affinity, relations, reasons, feeds, diversity."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pytest

from stream.domain.catalog import Catalog
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile, apply_event
from stream.domain.ranking import Boost, RankedItem, RankingProfile, rank
from stream.domain.relations import CoOccurrence

NOW = 1_700_000_000_000
MIN = 60_000


def add(
    catalog: Catalog,
    item_id: str,
    *,
    category: str = "shoes",
    brand: str = "acme",
    colour: str = "grey",
    deal: bool = False,
    new: bool = False,
    deleted: bool = False,
    popularity: float = 0.0,
) -> int:
    idx = catalog.upsert(
        {
            "item_id": item_id,
            "title": f"Title {item_id}",
            "attributes": {"category": category.title(), "brand": brand, "colour": colour},
            "flags": {"deal": deal, "new": new},
            "deleted": deleted,
        }
    )
    if popularity:
        catalog.record_interaction([idx], popularity)
    return idx


def query(item_id: str, role: str, ts: int) -> list[object]:
    """One query-set entry: [item_id, role, ts]."""
    return [item_id, role, ts]


def ids(items: Iterable[RankedItem]) -> list[str]:
    return [item.item_id for item in items]


def features_of(catalog: Catalog):
    def inner(item_id: str) -> list[str]:
        idx = catalog.index.get(item_id)
        return [] if idx is None else catalog.features_of(idx)

    return inner


def click(profile: UserProfile, catalog: Catalog, item_id: str, ts: int) -> None:
    event = UserEvent("clicks", f"e-{item_id}-{ts}", profile.user_id, ts, (item_id,), (1,))
    assert apply_event(profile, event, features_of(catalog))


RP = RankingProfile(max_per_category=100, size=20)


@pytest.fixture
def shop() -> Catalog:
    catalog = Catalog(capacity=4)  # small on purpose: exercises growth
    for i in range(8):
        add(catalog, f"s{i}", category="shoes" if i % 2 else "shirts", popularity=10 - i)
    return catalog


def test_catalog_grows_and_keeps_rows(shop: Catalog) -> None:
    assert len(shop) == 8
    assert shop.features_of(shop.index["s7"]) == [
        "category:shoes",
        "brand:acme",
        "colour:grey",
    ]
    assert shop.popularity[shop.index["s0"]] == 10.0
    assert shop.available[7] == 1


# -- business filters ----------------------------------------------------------------------------
def test_out_of_stock_disappears_and_restock_returns(shop: Catalog) -> None:
    profile = UserProfile(user_id="u")
    relations = CoOccurrence()
    before = ids(rank(profile, shop, relations, RP, NOW))
    assert "s0" in before and len(before) == 8  # also fills the popularity cache
    change = shop.set_stock("s0", 0)
    assert change is not None and change.went_out and not change.came_back
    after = ids(rank(profile, shop, relations, RP, NOW))
    assert "s0" not in after
    assert len(after) == 7
    change = shop.set_stock("s0", 3)
    assert change is not None and change.came_back and not change.went_out
    assert ids(rank(profile, shop, relations, RP, NOW))[0] == "s0"
    assert shop.set_stock("unknown", 0) is None


def test_negative_stock_is_out_of_stock(shop: Catalog) -> None:
    shop.set_stock("s1", -2)
    assert "s1" not in ids(rank(UserProfile(user_id="u"), shop, CoOccurrence(), RP, NOW))


def test_out_of_stock_is_filtered_from_every_candidate_source(shop: Catalog) -> None:
    relations = CoOccurrence()
    relations.observe([shop.index["s7"], shop.index["s6"]])
    profile = UserProfile(user_id="u")
    click(profile, shop, "s7", NOW - MIN)
    profile.queries = [query("s7", "view", NOW - MIN)]
    assert "s6" in ids(rank(profile, shop, relations, RP, NOW))
    shop.set_stock("s6", 0)
    shop.set_stock("s7", 0)
    got = ids(rank(profile, shop, relations, RP, NOW))
    assert "s6" not in got and "s7" not in got


def test_deleted_item_is_never_returned(shop: Catalog) -> None:
    add(shop, "s0", category="shirts", deleted=True)
    got = ids(rank(UserProfile(user_id="u"), shop, CoOccurrence(), RP, NOW))
    assert "s0" not in got
    assert len(got) == 7
    add(shop, "s0", category="shirts")  # undeleted by a later catalog update
    assert "s0" in ids(rank(UserProfile(user_id="u"), shop, CoOccurrence(), RP, NOW))


def test_returned_and_just_bought_are_filtered(shop: Catalog) -> None:
    profile = UserProfile(
        user_id="u", returned={"s0": NOW - MIN}, just_bought=["s1", "s2"], just_bought_ts=NOW - MIN
    )
    got = ids(rank(profile, shop, CoOccurrence(), RP, NOW))
    assert set(got) == {"s3", "s4", "s5", "s6", "s7"}
    # the filters can be switched off by the ranking profile
    lenient = RankingProfile(max_per_category=100, filter_returned=False, filter_just_bought=False)
    assert set(ids(rank(profile, shop, CoOccurrence(), lenient, NOW))) == {
        f"s{i}" for i in range(8)
    }


def test_just_bought_via_order_event_is_filtered(shop: Catalog) -> None:
    profile = UserProfile(user_id="u")
    order = UserEvent("orders", "o1", "u", NOW, ("s0", "s3"), (1, 1))
    apply_event(profile, order, features_of(shop))
    got = ids(rank(profile, shop, CoOccurrence(), RP, NOW))
    assert "s0" not in got and "s3" not in got


def test_empty_catalog_gives_empty_list() -> None:
    assert rank(UserProfile(user_id="u"), Catalog(), CoOccurrence(), RP, NOW) == []


# -- signals -------------------------------------------------------------------------------------
def test_ties_break_by_item_id_whatever_the_catalog_order() -> None:
    """Workers read the catalog in different orders; equal scores must still rank alike."""
    orders = [["a", "b", "c", "d"], ["d", "c", "b", "a"]]
    lists = []
    for order in orders:
        catalog = Catalog()
        for item_id in order:
            add(catalog, item_id, category=f"c{item_id}", popularity=5.0)
        lists.append(ids(rank(UserProfile(user_id="u"), catalog, CoOccurrence(), RP, NOW)))
    assert lists[0] == lists[1] and sorted(lists[0]) == ["a", "b", "c", "d"]


def test_cold_start_is_popularity_order() -> None:
    catalog = Catalog()
    pops = {"p0": 3.0, "p1": 50.0, "p2": 0.0, "p3": 7.0, "p4": 20.0}
    for item_id, pop in pops.items():
        add(catalog, item_id, category=f"c{item_id}", popularity=pop)
    got = rank(UserProfile(user_id="u"), catalog, CoOccurrence(), RP, NOW)
    assert ids(got) == ["p1", "p4", "p3", "p0", "p2"]
    scores = [item.score for item in got]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(RP.w_popularity)  # the most popular gets the full weight
    assert scores[-1] == pytest.approx(0.0, abs=1e-6)  # only the id tie-break (< 1e-6)


def test_affinity_puts_clicked_brand_first() -> None:
    catalog = Catalog()
    for i in range(6):
        add(catalog, f"x{i}", category=f"c{i % 3}", brand="xbrand", popularity=1.0)
        add(catalog, f"y{i}", category=f"c{i % 3}", brand="ybrand", popularity=100.0)
    profile = UserProfile(user_id="u")
    cold = ids(rank(profile, catalog, CoOccurrence(), RP, NOW))
    assert set(cold[:6]) == {f"y{i}" for i in range(6)}  # no history: the popular brand wins
    click(profile, catalog, "x0", NOW - 2 * MIN)
    click(profile, catalog, "x1", NOW - MIN)
    got = ids(rank(profile, catalog, CoOccurrence(), RP, NOW))
    # the unseen items of the clicked brand lead; the two clicked ones follow the unseen ones
    assert set(got[:4]) == {f"x{i}" for i in range(2, 6)}
    assert set(got[4:10]) == {f"y{i}" for i in range(6)}
    assert set(got[10:]) == {"x0", "x1"}
    mixed = ids(rank(profile, catalog, CoOccurrence(), replace(RP, seen_placement="mixed"), NOW))
    assert set(mixed[:6]) == {f"x{i}" for i in range(6)}
    top = rank(profile, catalog, CoOccurrence(), RP, NOW)[0]
    # in plain words, never the feature key
    assert any("your interest in brand Xbrand" in reason for reason in top.reasons)
    assert not any("brand:" in reason for reason in top.reasons)


def test_negative_affinity_pushes_items_down() -> None:
    catalog = Catalog()
    for i in range(4):
        add(catalog, f"x{i}", category="c", brand="xbrand", popularity=10.0)
        add(catalog, f"y{i}", category="c", brand="ybrand", popularity=1.0)
    profile = UserProfile(user_id="u")
    event = UserEvent("returns", "r1", "u", NOW, ("x0",), (1,))
    apply_event(profile, event, features_of(catalog))
    got = rank(profile, catalog, CoOccurrence(), RP, NOW)
    assert "x0" not in ids(got)  # returned
    assert set(ids(got)[:4]) == {f"y{i}" for i in range(4)}
    assert "partly matches features you turned away from" in got[-1].reasons


def test_relation_candidates_with_reason() -> None:
    catalog = Catalog()
    a = add(catalog, "A", category="shoes")
    b = add(catalog, "B", category="socks")
    for i in range(10):
        add(catalog, f"p{i}", category=f"c{i}", popularity=50.0)
    relations = CoOccurrence()
    relations.observe([a, b])
    targets, strengths = relations.related(a)
    assert targets.tolist() == [b] and strengths.tolist() == [1.0]
    profile = UserProfile(user_id="u", queries=[query("A", "view", NOW - 5 * MIN)])
    got = rank(profile, catalog, relations, RP, NOW)
    assert got[0].item_id == "B"
    assert got[0].reasons[0] == "related to 'Title A' you viewed 5 min ago"
    # bought items are queries too, with their own verb
    bought = UserProfile(user_id="u", queries=[query("A", "buy", NOW - 3 * 3600 * 1000)])
    got = rank(bought, catalog, relations, RP, NOW)
    assert got[0].item_id == "B"
    assert got[0].reasons[0] == "related to 'Title A' you bought 3 h ago"


def test_relation_strength_decays_with_query_age() -> None:
    catalog = Catalog()
    a, b, c, d = (add(catalog, x, category=x) for x in "ABCD")
    relations = CoOccurrence()
    relations.observe([a, b])
    relations.observe([c, d])
    queries = [query("C", "view", NOW - MIN), query("A", "view", NOW - 48 * 3600 * 1000)]
    profile = UserProfile(user_id="u", queries=queries)
    got = ids(rank(profile, catalog, relations, RP, NOW))
    assert got.index("D") < got.index("B")


def test_reasons_are_non_empty_strings() -> None:
    catalog = Catalog()
    for i in range(12):
        add(
            catalog,
            f"i{i}",
            category=f"c{i % 4}",
            brand=f"b{i % 3}",
            deal=i % 2 == 0,
            popularity=float(i % 5),
        )
    relations = CoOccurrence()
    relations.observe([0, 1, 2])
    profile = UserProfile(user_id="u")
    click(profile, catalog, "i0", NOW - MIN)
    apply_event(profile, UserEvent("returns", "r", "u", NOW, ("i3",), (1,)), features_of(catalog))
    for feed in ("for_you", "deals_for_you", "new_for_you"):
        for profile_ in (profile, UserProfile(user_id="cold")):
            for item in rank(profile_, catalog, relations, RP, NOW, feed=feed):
                assert item.reasons, item
                assert all(isinstance(r, str) and r for r in item.reasons)
                assert item.to_dict()["reasons"] == item.reasons


def test_deals_feed_only_deals_and_new_feed_only_new() -> None:
    catalog = Catalog()
    for i in range(10):
        add(
            catalog,
            f"i{i}",
            category=f"c{i}",
            deal=i in (2, 5, 7),
            new=i in (1, 2),
            popularity=float(i),
        )
    profile = UserProfile(user_id="u")
    deals = rank(profile, catalog, CoOccurrence(), RP, NOW, feed="deals_for_you")
    assert ids(deals) == ["i7", "i5", "i2"]
    assert all("on deal" in item.reasons for item in deals)
    new = rank(profile, catalog, CoOccurrence(), RP, NOW, feed="new_for_you")
    assert ids(new) == ["i2", "i1"]
    assert all("new in the catalog" in item.reasons for item in new)
    catalog.set_stock("i7", 0)
    assert ids(rank(profile, catalog, CoOccurrence(), RP, NOW, feed="deals_for_you")) == [
        "i5",
        "i2",
    ]


# -- diversity -----------------------------------------------------------------------------------
def test_diversity_cap_per_category() -> None:
    catalog = Catalog()
    for i, pop in enumerate((10, 9, 8, 7)):
        add(catalog, f"a{i}", category="alpha", popularity=pop)
    for i, pop in enumerate((5, 4)):
        add(catalog, f"b{i}", category="beta", popularity=pop)
    profile = UserProfile(user_id="u")
    uncapped = rank(profile, catalog, CoOccurrence(), RankingProfile(max_per_category=100), NOW)
    assert ids(uncapped) == ["a0", "a1", "a2", "a3", "b0", "b1"]
    capped = rank(profile, catalog, CoOccurrence(), RankingProfile(max_per_category=2), NOW)
    # two of each category first, then the overflow in score order
    assert ids(capped) == ["a0", "a1", "b0", "b1", "a2", "a3"]


def test_diversity_first_four_take_two_of_each_category() -> None:
    catalog = Catalog()
    for i, pop in enumerate((10, 9, 8, 7)):
        add(catalog, f"a{i}", category="alpha", popularity=pop)
    for i, pop in enumerate((6, 5, 4, 3)):
        add(catalog, f"b{i}", category="beta", popularity=pop)
    profile = UserProfile(user_id="u")
    top4 = ids(
        rank(profile, catalog, CoOccurrence(), RankingProfile(max_per_category=2, size=4), NOW)
    )
    assert top4 == ["a0", "a1", "b0", "b1"]
    full = ids(
        rank(profile, catalog, CoOccurrence(), RankingProfile(max_per_category=2, size=8), NOW)
    )
    assert full == ["a0", "a1", "b0", "b1", "a2", "a3", "b2", "b3"]
    one = ids(
        rank(profile, catalog, CoOccurrence(), RankingProfile(max_per_category=1, size=4), NOW)
    )
    assert one == ["a0", "b0", "a1", "a2"]


def test_diversity_fills_from_overflow_when_one_category_dominates() -> None:
    catalog = Catalog()
    for i in range(10):
        add(catalog, f"a{i}", category="alpha", popularity=100 - i)
    add(catalog, "b0", category="beta", popularity=1)
    rp = RankingProfile(max_per_category=2, size=6)
    got = ids(rank(UserProfile(user_id="u"), catalog, CoOccurrence(), rp, NOW))
    assert got == ["a0", "a1", "b0", "a2", "a3", "a4"]


def test_size_limits_the_list() -> None:
    catalog = Catalog()
    for i in range(30):
        add(catalog, f"i{i}", category=f"c{i % 10}", popularity=float(i))
    got = rank(UserProfile(user_id="u"), catalog, CoOccurrence(), RankingProfile(size=7), NOW)
    assert len(got) == 7
    assert len(set(ids(got))) == 7


# -- ranking profile -----------------------------------------------------------------------------
def test_ranking_profile_from_dict() -> None:
    rp = RankingProfile.from_dict(
        {
            "name": "summer",
            "version": 3,
            "weights": {
                "affinity": 0.5,
                "relation": 1.5,
                "popularity": 0.1,
                "session": 3,
                "long_term": 0.25,
                "dense": 9.0,
            },
            "filters": {"returned": False, "just_bought": False, "out_of_stock": True},
            "diversity": {"max_per_category": 2},
            "size": 7,
            "boosts": [{"feature": "Brand:Acme", "factor": 1.5}],
            "unknown_extra": {"x": 1},
        }
    )
    assert rp.label == "summer@3"
    assert (rp.w_affinity, rp.w_relation, rp.w_popularity, rp.w_session, rp.w_long_term) == (
        0.5,
        1.5,
        0.1,
        3.0,
        0.25,
    )
    assert rp.filter_returned is False and rp.filter_just_bought is False
    assert rp.max_per_category == 2
    assert rp.size == 7
    assert rp.rules.boosts == (Boost("brand:acme", 1.5),)  # spelled as the catalog spells it
    defaults = RankingProfile.from_dict({"name": "d", "version": 1})
    assert defaults == RankingProfile(name="d", version=1)
    assert defaults.filter_returned and defaults.filter_just_bought


# -- search filters ------------------------------------------------------------------------------
def test_search_filter_shifts_list_towards_filter() -> None:
    catalog = Catalog()
    colours = ["red", "green", "blue", "black", "navy"]
    for i in range(40):
        colour = colours[i % 5]
        pop = 1.0 if colour == "navy" else 100.0 + i
        add(catalog, f"i{i}", category=f"c{i % 4}", colour=colour, popularity=pop)
    navy = {f"i{i}" for i in range(40) if i % 5 == 4}
    profile = UserProfile(user_id="u")
    rp = RankingProfile()

    def navy_share() -> float:
        top = ids(rank(profile, catalog, CoOccurrence(), rp, NOW))[:10]
        assert len(top) == 10
        return sum(item in navy for item in top) / 10

    before = navy_share()
    search = UserEvent("searches", "s1", "u", NOW - MIN, filters={"colour": "Navy"})
    assert apply_event(profile, search, features_of(catalog))
    after = navy_share()
    assert before == 0.0
    assert after == 0.8  # all 8 navy items, 2 per category under the cap of 4
    assert after > before
