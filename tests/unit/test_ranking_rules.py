"""Business rules of a ranking profile: boosts, buries, pins, category exclusions, per feed."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from stream.domain.catalog import Catalog
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankedItem, RankingProfile, rank, rank_feeds
from stream.domain.relations import CoOccurrence

NOW = 1_700_000_000_000


def shop() -> Catalog:
    """Twelve items: brands acme/zeta, categories Clothing>Trousers and Food>Coffee; the
    coffees are the most popular, b5 and t5 are deals."""
    catalog = Catalog()
    for i in range(6):
        for prefix, brand, path, pop in (
            ("t", "Acme", ["Clothing", "Trousers"], 10.0 + i),
            ("b", "Zeta", ["Food", "Coffee"], 100.0 + i),
        ):
            idx = catalog.upsert(
                {
                    "item_id": f"{prefix}{i}",
                    "title": f"{prefix.upper()} number {i}",
                    "attributes": {"category": path, "brand": brand},
                    "flags": {"deal": i == 5, "new": False},
                }
            )
            catalog.record_interaction([idx], pop)
    return catalog


def ids(items: Iterable[RankedItem]) -> list[str]:
    return [item.item_id for item in items]


def ranked(
    rp: RankingProfile, profile: UserProfile | None = None, feed: str = "for_you"
) -> list[str]:
    return ids(rank(profile or UserProfile("u"), shop(), CoOccurrence(), rp, NOW, feed=feed))


BASE = {"name": "rules", "version": 1, "diversity": {"max_per_category": 100}}


def profile(**body: object) -> RankingProfile:
    return RankingProfile.from_dict({**BASE, **body})


def test_without_rules_coffee_leads_by_popularity() -> None:
    got = ranked(profile())
    assert got[:6] == [f"b{i}" for i in range(5, -1, -1)]
    assert got[6:] == [f"t{i}" for i in range(5, -1, -1)]


def test_boost_by_brand_multiplies_the_score() -> None:
    plain = rank(UserProfile("u"), shop(), CoOccurrence(), profile(), NOW)
    boosted = rank(
        UserProfile("u"),
        shop(),
        CoOccurrence(),
        profile(boosts=[{"feature": "brand:Acme", "factor": 3.0}]),
        NOW,
    )
    before = {item.item_id: item.score for item in plain}
    after = {item.item_id: item.score for item in boosted}
    for item_id in before:
        factor = 3.0 if item_id.startswith("t") else 1.0
        assert after[item_id] == pytest.approx(before[item_id] * factor, rel=1e-5)
    assert ids(boosted)[0] == "t5"  # 3 × log-popularity of the best trouser beats every coffee


def test_bury_moves_down_and_factor_zero_removes() -> None:
    buried = ranked(profile(buries=[{"feature": "brand:zeta", "factor": 0.01}]))
    assert buried[:6] == [f"t{i}" for i in range(5, -1, -1)]
    gone = ranked(profile(buries=[{"feature": "brand:zeta", "factor": 0}]))
    assert gone == [f"t{i}" for i in range(5, -1, -1)]


def test_boost_on_a_category_level_and_on_the_deal_flag() -> None:
    assert ranked(profile(buries=[{"feature": "category:food", "factor": 0}]))[0] == "t5"
    got = ranked(profile(boosts=[{"feature": "deal", "factor": 100}]))
    assert set(got[:2]) == {"b5", "t5"}


def test_boosts_multiply_when_several_apply() -> None:
    rules = [
        {"feature": "brand:acme", "factor": 0.5},
        {"feature": "category:trousers", "factor": 8},
    ]
    plain = {
        i.item_id: i.score for i in rank(UserProfile("u"), shop(), CoOccurrence(), profile(), NOW)
    }
    both = rank(UserProfile("u"), shop(), CoOccurrence(), profile(boosts=rules), NOW)
    for item in both:
        if item.item_id.startswith("t"):
            assert item.score == pytest.approx(plain[item.item_id] * 4.0, rel=1e-5)


def test_boost_of_a_negative_score_still_moves_it_up() -> None:
    """A factor > 1 must never push an item down, whatever the sign of its score."""
    catalog = shop()
    user = UserProfile("u", session={"brand:acme": [-50.0, float(NOW)]})
    rp = profile(weights={"popularity": 0.0})
    plain = {i.item_id: i.score for i in rank(user, catalog, CoOccurrence(), rp, NOW)}
    assert plain["t0"] < 0
    up = profile(weights={"popularity": 0.0}, boosts=[{"feature": "brand:acme", "factor": 2}])
    boosted = {i.item_id: i.score for i in rank(user, catalog, CoOccurrence(), up, NOW)}
    assert boosted["t0"] > plain["t0"]


def test_pins_come_first_in_their_order() -> None:
    got = ranked(profile(pins=["t0", "t1", "unknown-item"]))
    assert got[:3] == ["t0", "t1", "b5"]
    assert len(got) == 12 and len(set(got)) == 12


def test_pins_never_resurrect_filtered_items() -> None:
    catalog = shop()
    catalog.set_stock("t0", 0)
    user = UserProfile("u", returned={"t1": NOW - 1}, just_bought=["t2"], just_bought_ts=NOW - 1)
    rp = profile(
        pins=["t0", "t1", "t2", "t3", "b0"],
        buries=[{"feature": "brand:zeta", "factor": 0}],
        filters={"exclude_categories": ["Trousers"]},
    )
    got = ids(rank(user, catalog, CoOccurrence(), rp, NOW))
    assert got == []  # every pin is out of stock, returned, just bought, excluded or removed
    rp = profile(pins=["t0", "t1", "t2", "t3", "b0"])
    got = ids(rank(user, catalog, CoOccurrence(), rp, NOW))
    assert got[:2] == ["t3", "b0"]
    assert not {"t0", "t1", "t2"} & set(got)


def test_pins_respect_the_feed() -> None:
    """A pinned item that is not a deal does not appear in the deals feed."""
    got = ranked(profile(pins=["t0", "t5"]), feed="deals_for_you")
    assert got == ["t5", "b5"]


def test_category_exclusion_by_leaf_or_parent_in_any_spelling() -> None:
    assert ranked(profile(filters={"exclude_categories": ["Coffee"]})) == [
        f"t{i}" for i in range(5, -1, -1)
    ]
    assert not any(
        i.startswith("t")
        for i in ranked(profile(filters={"exclude_categories": ["category:CLOTHING"]}))
    )


def test_per_feed_rules_replace_the_body_rules_for_that_feed() -> None:
    rp = profile(
        buries=[{"feature": "brand:zeta", "factor": 0}],
        feeds={"deals_for_you": {"buries": [], "pins": ["b5"]}},
    )
    lists = rank_feeds(
        UserProfile("u"), shop(), CoOccurrence(), rp, NOW, ("for_you", "deals_for_you")
    )
    assert not any(i.startswith("b") for i in ids(lists["for_you"]))
    assert ids(lists["deals_for_you"]) == ["b5", "t5"]


def test_size_counts_the_pins() -> None:
    got = ranked(profile(size=3, pins=["t0", "t1", "t2", "t3"]))
    assert got == ["t0", "t1", "t2"]
