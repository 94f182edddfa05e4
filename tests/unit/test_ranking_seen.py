"""Items the user already saw: they follow the unseen ones and never use up a diversity cap.

The scenario is issue #8's, as a new user tried it: 6 trousers (brand acme), 6 coffees, other
shoppers clicking the coffees; our shopper clicks two trousers and dwells 45 s on one. The two
trousers just clicked used to come first and take two of the three per-category slots, so
coffee filled places 4-6 although unseen trousers remained.
"""

from __future__ import annotations

from dataclasses import replace

from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile, rank
from stream.domain.relations import CoOccurrence

T0 = 1_700_000_000_000
SEC = 1000


def trouser_shop() -> Engine:
    catalog = Catalog()
    for i in range(1, 7):
        catalog.upsert(
            {
                "item_id": f"A{i}",
                "title": f"Chino {i}",
                "attributes": {"category": ["Clothing", "Trousers"], "brand": "acme"},
            }
        )
        catalog.upsert(
            {
                "item_id": f"B{i}",
                "title": f"Coffee {i}",
                "attributes": {"category": ["Food", "Coffee"], "brand": f"roaster{i}"},
            }
        )
    return Engine(catalog=catalog, ranking=RankingProfile(max_per_category=3))


def click(user: str, item: str, ts: int, n: int) -> UserEvent:
    return UserEvent("clicks", f"c-{user}-{n}", user, ts, (item,), (1,))


def shopper_session(engine: Engine) -> list[str]:
    """Others click the coffees and buy half of what they clicked (so the shop learns that
    viewed items are bought: seen items are allowed back), then the shopper's three events."""
    n = 0
    for u in range(8):
        user, profile = f"other{u}", None
        for b in range(1, 7):
            n += 1
            profile = engine.step(profile, user, [click(user, f"B{b}", T0 + n, n)]).state
        n += 1
        order = UserEvent("orders", f"o-{u}", user, T0 + n, ("B1", "B3", "B5"), (1, 1, 1))
        engine.step(profile, user, [order])
    events = [
        click("shopper", "A2", T0 + 100 * SEC, 1),
        click("shopper", "A1", T0 + 130 * SEC, 2),
        UserEvent("dwell", "d-1", "shopper", T0 + 175 * SEC, ("A1",), (1,), dwell_ms=45_000),
    ]
    result = engine.step(None, "shopper", events)
    (rec,) = result.recommendations
    return [item.item_id for item in rec.items]


def test_after_two_trouser_clicks_unseen_trousers_lead() -> None:
    got = shopper_session(trouser_shop())
    unseen = [item for item in got if item not in ("A1", "A2")]
    assert sum(item.startswith("A") for item in unseen[:3]) >= 2
    # the three per-category slots of the top went to unseen trousers, not the clicked ones
    assert got[:3] == unseen[:3]
    assert {"A3", "A4", "A5", "A6"} <= set(got)


def test_seen_items_follow_the_unseen_ones_and_stay_in_the_list() -> None:
    # without relation_recent, which credits A2 for being related to the latest query (A1)
    # and would decide the order of the seen tail by that alone
    engine = trouser_shop()
    engine.ranking = replace(engine.ranking, w_relation_recent=0.0)
    got = shopper_session(engine)
    # the shop's customers buy what they viewed, so the clicked trousers are allowed back:
    # behind every unseen item, the one dwelled on (more affinity, more recent) first
    assert got[-2:] == ["A1", "A2"]
    assert len(got) == 12


def test_seen_items_stay_at_the_tail_with_the_recent_relation_on() -> None:
    """With relation_recent on, A2 (related to the latest query A1, rank 0) outscores A1
    (related to A2, one event back): still both at the tail, behind every unseen item."""
    got = shopper_session(trouser_shop())
    assert set(got[-2:]) == {"A1", "A2"} and len(got) == 12


def test_seen_items_do_not_count_against_the_cap_when_mixed() -> None:
    """Even ranked by score among the rest, seen items leave the cap to unseen ones."""
    engine = trouser_shop()
    engine.ranking = replace(engine.ranking, seen_placement="mixed")
    got = shopper_session(engine)
    # the two clicked trousers lead by score, and three unseen ones still fit under the cap
    assert set(got[:2]) == {"A1", "A2"}
    assert all(item.startswith("A") for item in got[2:5])


def test_seen_tail_bounds_how_many_seen_items_come_back() -> None:
    catalog = Catalog()
    for i in range(30):
        catalog.upsert({"item_id": f"i{i}", "attributes": {"category": f"c{i % 10}"}})
    queries = [[f"i{i}", "view", T0 - i * SEC] for i in range(8)]
    profile = UserProfile("u", queries=queries)
    rp = RankingProfile(size=12, seen_tail=2)
    got = [item.item_id for item in rank(profile, catalog, CoOccurrence(), rp, T0)]
    seen = {f"i{i}" for i in range(8)}
    assert len(got) == 12
    assert [item in seen for item in got] == [False] * 10 + [True] * 2
    none = [i.item_id for i in rank(profile, catalog, CoOccurrence(), replace(rp, seen_tail=0), T0)]
    assert not seen & set(none)
    # with too few unseen items, seen ones fill the list rather than leaving it short
    small = RankingProfile(size=40, seen_tail=2)
    full = [i.item_id for i in rank(profile, catalog, CoOccurrence(), small, T0)]
    assert len(full) == 30 and seen <= set(full[22:])


def test_repeat_purchases_are_not_seen_items() -> None:
    """Grocery staples the user buys again stay where their score puts them."""
    catalog = Catalog()
    for i in range(20):
        catalog.upsert({"item_id": f"g{i}", "attributes": {"category": f"c{i % 5}"}})
        catalog.record_interaction([i], float(20 - i))
    profile = UserProfile(
        "u",
        purchases={"g19": [3.0, float(T0 - 3600 * SEC)]},
        queries=[["g19", "buy", T0 - 3600 * SEC]],
    )
    rp = RankingProfile(filter_purchased=False, w_repeat=20.0)
    got = [item.item_id for item in rank(profile, catalog, CoOccurrence(), rp, T0)]
    assert got[0] == "g19"
