"""Learned repeat propensities: hand-computed rates, the Engine hook, eligibility, serialisation."""

from __future__ import annotations

import pytest

from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.learned import RepeatModel
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.domain.signals import banned_items, category_of, returns_of

T0 = 1_700_000_000_000
DAY = 24 * 3600 * 1000
DAIRY = "category:dairy"  # the leaf category feature of ["Food", "Dairy"]


def shop() -> Engine:
    """Items A, B in leaf category dairy; C, D, E have no attributes at all."""
    catalog = Catalog()
    for item in "AB":
        catalog.upsert({"item_id": item, "attributes": {"category": ["Food", "Dairy"]}})
    for item in "CDE":
        catalog.upsert({"item_id": item})
    return Engine(catalog=catalog, ranking=RankingProfile(size=5))


def run(engine: Engine, profiles: dict[str, UserProfile], events: list[UserEvent]) -> None:
    for e in events:
        profiles[e.user_id] = engine.step(profiles.get(e.user_id), e.user_id, [e]).state


def ev(topic: str, user: str, day: int, *items: str) -> UserEvent:
    return UserEvent(topic, f"{topic}-{user}-{day}-{items}", user, T0 + day * DAY, items)


def test_rebuy_rates_shrink_item_to_category_to_shop() -> None:
    engine, profiles = shop(), {}
    run(
        engine,
        profiles,
        [
            ev("orders", "u1", 0, "A"),  # first purchase: trial, no success
            ev("orders", "u1", 7, "A"),  # bought before: trial and success
            ev("orders", "u2", 8, "B"),
            ev("orders", "u2", 9, "C"),  # no attributes: counts on the item and the shop only
        ],
    )
    rebuy = engine.repeats.rebuy
    # counts: A 1/2, B 0/1, C 0/1, dairy 1/3, shop 1/4
    assert (rebuy.items["A"].successes, rebuy.items["A"].trials) == (1.0, 2.0)
    assert (
        rebuy.categories["category:dairy"].successes,
        rebuy.categories["category:dairy"].trials,
    ) == (1.0, 3.0)
    assert (rebuy.shop.successes, rebuy.shop.trials) == (1.0, 4.0)
    shop_rate = (1 + 1) / (4 + 10)  # global prior: 1 success in 10 trials
    dairy = (1 + 5 * shop_rate) / (3 + 5)  # prior strength 5
    assert rebuy.shop_rate() == pytest.approx(1 / 7)
    assert engine.repeats.rebuy_rate("A", DAIRY) == pytest.approx((1 + 5 * dairy) / (2 + 5))
    assert engine.repeats.rebuy_rate("C", None) == pytest.approx((0 + 5 * shop_rate) / (1 + 5))
    # sparse or unseen items fall back: to the category, else to the shop
    assert engine.repeats.rebuy_rate("new-yoghurt", DAIRY) == pytest.approx(dairy)
    assert engine.repeats.rebuy_rate("E", None) == pytest.approx(shop_rate)
    bulk = rebuy.rates(["A", "C", "E"], category_of(engine.catalog))
    assert bulk == pytest.approx({"A": (1 + 5 * dairy) / 7, "C": 5 * shop_rate / 6, "E": shop_rate})
    ids = ["A", "C", "E", "not-in-the-catalog", "A"]
    assert rebuy.rates_for(ids, engine.catalog) == rebuy.rates(ids, category_of(engine.catalog))


def test_view_return_counts_first_views_and_later_purchases() -> None:
    engine, profiles = shop(), {}
    run(
        engine,
        profiles,
        [
            ev("clicks", "u3", 0, "D"),  # first view: a trial
            ev("orders", "u3", 1, "D"),  # viewed, never bought: a success (no new trial)
            ev("clicks", "u3", 2, "D"),  # already known: not a new trial
            ev("clicks", "u3", 3, "E"),  # first view: a trial
        ],
    )
    view = engine.repeats.view_return
    assert (view.items["D"].successes, view.items["D"].trials) == (1.0, 1.0)
    assert (view.shop.successes, view.shop.trials) == (1.0, 2.0)
    shop_rate = (1 + 1) / (2 + 10)
    assert engine.repeats.view_return_rate("D", None) == pytest.approx((1 + 5 * shop_rate) / 6)
    assert engine.repeats.view_return_rate("E", None) == pytest.approx(5 * shop_rate / 6)


def test_never_rebought_items_are_banned_staples_are_not() -> None:
    """A shop where nobody buys twice learns it; one where staples return keeps them."""
    films, profiles = shop(), {}
    run(films, profiles, [ev("orders", f"u{n}", n, "A", "C") for n in range(40)])
    assert films.repeats.rebuy_rate("A", DAIRY) < 0.05
    rp = RankingProfile()
    gone = banned_items(
        profiles["u1"],
        rp,
        T0 + 90 * DAY,
        returns_of(profiles["u1"], films.repeats, films.catalog),
    )
    assert gone == {"A", "C"}
    grocery, profiles = shop(), {}
    run(grocery, profiles, [ev("orders", f"u{n % 4}", n, "A") for n in range(40)])
    assert grocery.repeats.rebuy_rate("A", DAIRY) > 0.5
    kept = banned_items(
        profiles["u1"],
        rp,
        T0 + 90 * DAY,
        returns_of(profiles["u1"], grocery.repeats, grocery.catalog),
    )
    assert kept == set()
    # a hand-written profile still overrides what was learned
    forced = RankingProfile(filter_purchased=True)
    returns = returns_of(profiles["u1"], grocery.repeats, grocery.catalog)
    assert banned_items(profiles["u1"], forced, T0 + 90 * DAY, returns) == {"A"}


def test_state_round_trips_and_merges_by_addition() -> None:
    engine, profiles = shop(), {}
    run(engine, profiles, [ev("orders", "u1", d, "A") for d in range(3)])
    raw = engine.repeats.to_bytes()
    copy = RepeatModel.from_bytes(raw)
    assert copy.to_dict() == engine.repeats.to_dict()
    copy.merge(engine.repeats)
    assert copy.rebuy.items["A"].trials == 6.0
    assert copy.rebuy.categories["category:dairy"].successes == 4.0
