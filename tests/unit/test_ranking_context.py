"""Context enters ranking through the profile: conditioned boosts, query match, price fit and
freshness signals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import orjson
import pytest

from stream.domain.catalog import Catalog
from stream.domain.context_signals import freshness, price_fit, query_match, tokens
from stream.domain.events import UserEvent, event_from_message
from stream.domain.profile import UserProfile, apply_event
from stream.domain.ranking import RankingProfile, rank
from stream.domain.relations import CoOccurrence

NOW = 1_700_000_000_000
HOUR = 3600 * 1000
DAY = 24 * HOUR


def no_features(item_id: str) -> list[str]:
    return []


def clicked(context: dict[str, str], ts: int = NOW, n: int = 1) -> UserEvent:
    msg = {"event_id": f"e{n}", "user_id": "u", "item_id": "x", "ts": ts, "context": context}
    return event_from_message("clicks", msg)


def test_click_context_is_decoded_and_remembered() -> None:
    event = clicked({"device": "mobile", "locale": "nl-NL", "query": "navy chinos", "x": "y"})
    assert event.context == {"device": "mobile", "locale": "nl-NL"}
    assert event.query == "navy chinos"
    profile = UserProfile("u")
    apply_event(profile, event, no_features)
    assert (profile.context, profile.query, profile.query_ts) == (
        {"device": "mobile", "locale": "nl-NL"},
        "navy chinos",
        NOW,
    )
    apply_event(profile, clicked({"device": "desktop"}, NOW - HOUR, 2), no_features)
    assert profile.context["device"] == "mobile"  # a late event does not overwrite
    apply_event(profile, clicked({"device": "desktop"}, NOW + 1, 3), no_features)
    assert profile.context == {"device": "desktop"} and profile.query == "navy chinos"
    back = UserProfile.from_bytes(profile.to_bytes())
    assert back == profile


def test_profiles_without_context_store_no_context_fields_and_load() -> None:
    """Profiles stored before these fields existed, or of users who never sent a context,
    have no ``cx``/``qy``/``qt`` keys and load with the empty defaults."""
    raw = UserProfile("u").to_dict()
    assert not {"cx", "qy", "qt"} & raw.keys()
    old = UserProfile.from_bytes(orjson.dumps(raw))
    assert (old.context, old.query, old.query_ts) == ({}, "", 0)


def two_brands() -> Catalog:
    catalog = Catalog()
    for i in range(4):
        for brand, pop in (("acme", 1.0), ("zeta", 50.0)):
            idx = catalog.upsert(
                {"item_id": f"{brand}{i}", "attributes": {"brand": brand, "category": f"c{i}"}}
            )
            catalog.record_interaction([idx], pop)
    return catalog


def test_boost_conditioned_on_device() -> None:
    rp = RankingProfile.from_dict(
        {
            "name": "ctx",
            "version": 1,
            "boosts": [{"feature": "brand:acme", "factor": 50, "when": {"device": "Mobile"}}],
        }
    )
    catalog = two_brands()
    phone = UserProfile("u", context={"device": "mobile"})
    laptop = UserProfile("u", context={"device": "desktop"})
    first = rank(phone, catalog, CoOccurrence(), rp, NOW)[0].item_id
    assert first.startswith("acme")
    assert rank(laptop, catalog, CoOccurrence(), rp, NOW)[0].item_id.startswith("zeta")
    assert rank(UserProfile("u"), catalog, CoOccurrence(), rp, NOW)[0].item_id.startswith("zeta")


def shop_with_titles() -> Catalog:
    catalog = Catalog()
    titles = ["Navy chinos slim", "Black jeans", "Navy blazer", "Grey chinos", "Coffee beans"]
    for i, title in enumerate(titles):
        idx = catalog.upsert(
            {"item_id": f"i{i}", "title": title, "attributes": {"category": ["Men", "Trousers"]}}
        )
        catalog.record_interaction([idx], 10.0 - i)
    for i in range(5, 200):  # popular items that crowd the candidate pool
        idx = catalog.upsert({"item_id": f"i{i}", "title": f"Filler {i}"})
        catalog.record_interaction([idx], 100.0)
    return catalog


def test_tokens_are_lower_case_words() -> None:
    assert tokens("Navy CHINOS, navy / 32-34 x") == ["navy", "chinos", "32", "34"]


def test_query_match_is_the_share_of_query_tokens_and_fades() -> None:
    catalog = shop_with_titles()
    cands = np.arange(5)
    profile = UserProfile("u", query="navy chinos", query_ts=NOW)
    got = query_match(profile, catalog, cands, 1.0)
    assert got.tolist() == [1.0, 0.0, 0.5, 0.5, 0.0]
    # category path tokens count too: "trousers" is in every one of the five
    profile = UserProfile("u", query="trousers", query_ts=NOW)
    assert query_match(profile, catalog, cands, 0.5).tolist() == [0.5] * 5


def test_query_brings_matching_items_into_the_list_first() -> None:
    catalog = shop_with_titles()
    cold = [
        i.item_id for i in rank(UserProfile("u"), catalog, CoOccurrence(), RankingProfile(), NOW)
    ]
    assert "i0" not in cold  # unpopular: not even a candidate without the query
    searched = UserProfile("u", query="navy chinos", query_ts=NOW - 60_000)
    got = [i.item_id for i in rank(searched, catalog, CoOccurrence(), RankingProfile(), NOW)]
    assert got[0] == "i0"
    assert set(got[1:3]) == {"i2", "i3"}
    stale = replace(searched, query_ts=NOW - 2 * DAY)  # two days later the query is forgotten
    assert rank(stale, catalog, CoOccurrence(), RankingProfile(), NOW)[0].item_id != "i0"


def priced_shop() -> Catalog:
    catalog = Catalog()
    for i, price in enumerate((5.0, 10.0, 20.0, 40.0, 80.0, 160.0)):
        catalog.upsert({"item_id": f"p{i}", "attributes": {"price": price, "category": f"c{i}"}})
    catalog.upsert({"item_id": "noprice", "attributes": {"category": "c9"}})
    return catalog


def test_price_fit_peaks_at_the_users_typical_band() -> None:
    catalog = priced_shop()
    band_of_20 = catalog.features_of(catalog.index["p2"])[0]
    affinity = np.zeros(len(catalog.vocab_names))
    affinity[catalog.vocab[band_of_20]] = 3.0
    cands = np.arange(len(catalog))
    fit = price_fit(catalog, cands, affinity)
    assert fit[2] == pytest.approx(1.0)
    assert fit[1] == fit[3] == pytest.approx(float(np.exp(-1 / 1.5)))
    assert fit[0] < fit[1] and fit[5] < fit[4] < fit[3]
    assert fit[6] == 0.0  # no price
    assert not price_fit(catalog, cands, affinity * 0).any()  # no price history


def test_price_fit_ranks_the_users_price_range_first() -> None:
    catalog = priced_shop()
    profile = UserProfile("u", long_term={"price_band:7": [2.0, float(NOW)]})
    rp = RankingProfile(w_price_fit=1.0, w_affinity=0.0)
    got = [i.item_id for i in rank(profile, catalog, CoOccurrence(), rp, NOW)]
    assert got[0] == "p2"  # 20.0 is band 7 (log2(20) = 4.3 -> 4 + 3)
    off = [
        i.item_id for i in rank(profile, catalog, CoOccurrence(), replace(rp, w_price_fit=0), NOW)
    ]
    assert off[0] != "p2"


def test_freshness_decays_from_the_first_catalog_message() -> None:
    catalog = Catalog()
    for i, age_days in enumerate((0, 14, 60)):
        catalog.upsert({"item_id": f"f{i}", "ts": NOW - age_days * DAY, "attributes": {}})
    catalog.upsert({"item_id": "unknown"})
    catalog.upsert({"item_id": "f0", "ts": NOW, "title": "updated later"})  # keeps first ts
    cands = np.arange(4)
    fresh = freshness(catalog, cands, NOW, 14 * DAY)
    assert fresh[0] == pytest.approx(1.0) and fresh[1] == pytest.approx(float(np.exp(-1)))
    assert fresh[2] < fresh[1] and fresh[3] == 0.0
    rp = RankingProfile(w_freshness=1.0, max_per_category=100)
    got = [i.item_id for i in rank(UserProfile("u"), catalog, CoOccurrence(), rp, NOW)]
    assert got == ["f0", "f1", "f2", "unknown"]
