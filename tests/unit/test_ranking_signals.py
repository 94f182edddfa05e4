"""Each signal column is fed by its own input and by nothing else; each filter bans what it
says. One small shop; every test sets up only what its signal reads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from stream.domain.candidate_kernels import lookup_sorted
from stream.domain.catalog import Catalog
from stream.domain.learned import RepeatModel
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile, rank
from stream.domain.relations import CoOccurrence
from stream.domain.signals import (
    SIGNALS,
    Signals,
    banned_items,
    candidate_signals,
    returns_of,
)
from stream.domain.trending import Trending

NOW = 1_700_000_000_000
MIN = 60_000
DAY = 24 * 60 * MIN
#: every column on, so a zero weight never hides a signal's computation
ALL_ON = RankingProfile(w_price_fit=1.0, w_freshness=1.0, w_relation_long=0.5)


def shop() -> Catalog:
    catalog = Catalog()
    for i in range(6):
        catalog.upsert(
            {
                "item_id": f"i{i}",
                "title": f"Title {i}",
                "ts": NOW - (1 if i == 5 else 400) * DAY,
                "attributes": {
                    "category": f"c{i}",
                    "brand": "acme" if i < 2 else "zeta",
                    "price": 4.0 if i == 3 else 1000.0,
                },
            }
        )
    return catalog


def signals(
    profile: UserProfile,
    catalog: Catalog | None = None,
    relations: CoOccurrence | None = None,
    trending: Trending | None = None,
    learned: RepeatModel | None = None,
    rp: RankingProfile = ALL_ON,
) -> tuple[Catalog, Signals]:
    catalog = catalog or shop()
    sig = candidate_signals(
        profile, catalog, relations or CoOccurrence(), rp, NOW, learned=learned, trending=trending
    )
    return catalog, sig


def column(catalog: Catalog, sig: Signals, name: str) -> dict[str, float]:
    col = SIGNALS.index(name)
    return {catalog.ids[c]: float(v) for c, v in zip(sig.cands, sig.values[:, col], strict=True)}


def nonzero(catalog: Catalog, sig: Signals) -> set[str]:
    return {SIGNALS[c] for c in np.flatnonzero(np.abs(sig.values).sum(axis=0) > 0)}


def test_a_cold_user_gets_nothing_but_popularity_and_freshness() -> None:
    catalog = shop()
    catalog.record_interaction([0], 5.0)
    catalog, sig = signals(UserProfile("u"), catalog)
    assert nonzero(catalog, sig) == {"popularity", "freshness"}
    assert column(catalog, sig, "freshness")["i5"] > 0.9 > column(catalog, sig, "freshness")["i0"]


@pytest.mark.parametrize("horizon", ["session", "long_term"])
def test_affinity_on_each_horizon(horizon: str) -> None:
    profile = UserProfile("u", **{horizon: {"brand:acme": [2.0, float(NOW)]}})
    catalog, sig = signals(profile)
    name = "affinity_session" if horizon == "session" else "affinity_long"
    col = column(catalog, sig, name)
    assert col["i0"] == col["i1"] == pytest.approx(1.0) and col["i2"] == 0.0
    other = "affinity_long" if horizon == "session" else "affinity_session"
    assert not any(column(catalog, sig, other).values())


def test_relation_on_both_horizons() -> None:
    relations = CoOccurrence()
    relations.observe([0, 4])
    recent = UserProfile("u", queries=[["i0", "view", NOW - MIN]])
    catalog, sig = signals(recent, relations=relations)
    assert column(catalog, sig, "relation")["i4"] == pytest.approx(1.0)
    assert column(catalog, sig, "relation_long")["i4"] == pytest.approx(1.0)
    assert column(catalog, sig, "relation")["i2"] == 0.0
    # beyond the session's query items the long horizon still sees it
    old = UserProfile("u", queries=[[f"x{n}", "view", NOW - n] for n in range(25)])
    old.queries.append(["i0", "view", NOW - 30 * DAY])
    catalog, sig = signals(old, relations=relations)
    assert column(catalog, sig, "relation").get("i4", 0.0) == 0.0
    assert column(catalog, sig, "relation_long")["i4"] > 0


def test_repeat_is_the_purchase_memory_times_the_rebuy_rate() -> None:
    profile = UserProfile(
        "u",
        purchases={"i2": [2.0, float(NOW - DAY)], "i3": [1.0, float(NOW - DAY)]},
        queries=[["i2", "buy", NOW - DAY], ["i3", "buy", NOW - DAY]],
    )
    catalog, sig = signals(profile, rp=replace(ALL_ON, filter_purchased=False))
    col = column(catalog, sig, "repeat")
    assert col["i2"] == pytest.approx(1.0) and col["i3"] == pytest.approx(0.5)


def test_view_return_needs_a_learned_rate_and_fades_with_the_view() -> None:
    profile = UserProfile("u", queries=[["i1", "view", NOW - MIN], ["i2", "view", NOW - 2 * DAY]])
    catalog, sig = signals(profile)
    assert not any(column(catalog, sig, "view_return").values())  # no model: not a signal
    catalog, sig = signals(profile, learned=RepeatModel())
    col = column(catalog, sig, "view_return")
    assert col["i1"] > col["i2"] > 0


def test_trending_columns_come_from_the_trending_model() -> None:
    trending = Trending()
    trending.observe([4], 3.0, NOW - MIN)
    catalog, sig = signals(UserProfile("u"), trending=trending)
    assert column(catalog, sig, "trend_day")["i4"] == pytest.approx(1.0, rel=1e-3)
    assert column(catalog, sig, "trend_week")["i4"] == pytest.approx(1.0, rel=1e-3)


def test_query_match_and_price_fit_columns() -> None:
    profile = UserProfile(
        "u", query="title c3", query_ts=NOW, long_term={"price_band:5": [1.0, float(NOW)]}
    )
    catalog, sig = signals(profile)
    q = column(catalog, sig, "query_match")
    assert q["i3"] == pytest.approx(1.0) and q["i1"] == pytest.approx(
        0.5
    )  # "title" only; "c3" is i3's category
    price = column(catalog, sig, "price_fit")
    assert price["i3"] == pytest.approx(1.0) and price["i0"] < 0.01  # 4.0 is band 5


def test_zero_weights_skip_price_fit_and_freshness() -> None:
    profile = UserProfile("u", long_term={"price_band:5": [1.0, float(NOW)]})
    catalog, sig = signals(profile, rp=RankingProfile())
    assert not {"price_fit", "freshness"} & nonzero(catalog, sig)


# -- filters -------------------------------------------------------------------------------------
def bought_and_viewed() -> UserProfile:
    return UserProfile(
        "u",
        purchases={"i1": [1.0, float(NOW - DAY)]},
        queries=[["i1", "buy", NOW - DAY], ["i2", "view", NOW - MIN]],
    )


@pytest.mark.parametrize(
    ("purchased", "seen", "banned"),
    [
        (True, False, {"i1"}),
        (False, False, set()),
        (None, None, {"i1", "i2"}),  # the model's rates (no evidence: a low prior) decide
        (False, True, {"i1", "i2"}),  # seen = interacted at all, bought included
    ],
)
def test_purchased_and_seen_filters(
    purchased: bool | None, seen: bool | None, banned: set[str]
) -> None:
    profile = bought_and_viewed()
    model = RepeatModel()
    for n in range(50):  # the shop's customers never come back: rates far below the floor
        model.rebuy.add(f"z{n}", None, False)
        model.view_return.add(f"z{n}", None, False)
    rp = RankingProfile(filter_purchased=purchased, filter_seen=seen)
    returns = returns_of(profile, model, shop())
    assert banned_items(profile, rp, NOW, returns) == banned
    got = {i.item_id for i in rank(profile, shop(), CoOccurrence(), rp, NOW, learned=model)}
    assert not banned & got and (set(shop().ids) - banned) == got


def test_lookup_sorted_reads_several_columns_with_one_search() -> None:
    keys = np.array([2, 5, 9, 11])
    cands = np.array([1, 2, 3, 9, 12])
    short, long = np.array([0.1, 0.2, 0.3, 0.4]), np.array([1.0, 2.0, 3.0, 4.0])
    both = lookup_sorted(keys, np.column_stack([short, long]), cands)
    assert both.shape == (5, 2)
    assert both[:, 0].tolist() == lookup_sorted(keys, short, cands).tolist() == [0, 0.1, 0, 0.3, 0]
    assert both[:, 1].tolist() == lookup_sorted(keys, long, cands).tolist() == [0, 1, 0, 3, 0]
    empty = np.zeros(0, dtype=np.int64)
    assert lookup_sorted(empty, np.zeros((0, 2)), cands).shape == (5, 2)
