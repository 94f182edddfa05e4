"""A search's filters (``{"colour": "navy", "size": "M"}``) are remembered with the search and
rank the items that meet them first, in any category, while the search is the latest one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import pytest

from stream.domain.catalog import Catalog
from stream.domain.context_signals import query_candidates
from stream.domain.events import UserEvent, event_from_message
from stream.domain.profile import UserProfile, apply_event
from stream.domain.ranking import RankingProfile, rank
from stream.domain.relations import CoOccurrence
from stream.domain.search_filters import filter_match, in_range, search_filters

NOW = 1_700_000_000_000
DAY = 24 * 3600 * 1000


def no_features(item_id: str) -> list[str]:
    return []


def search(ts: int, n: int, query: str | None = None, **filters: Any) -> UserEvent:
    msg: dict[str, Any] = {"event_id": f"s{n}", "user_id": "u", "ts": ts, "filters": filters}
    if query is not None:
        msg["query"] = query
    return event_from_message("searches", msg)


def click(ts: int, n: int, query: str) -> UserEvent:
    msg = {"event_id": f"c{n}", "user_id": "u", "item_id": "x", "ts": ts}
    return event_from_message("clicks", {**msg, "context": {"query": query}})


def test_a_search_keeps_its_filters_and_the_next_search_replaces_them() -> None:
    profile = UserProfile("u")
    apply_event(profile, search(NOW, 1, "chinos", colour=["Navy", "black"], size="M"), no_features)
    assert (profile.query, profile.filters) == ("chinos", ["colour:navy", "colour:black", "size:m"])
    apply_event(profile, search(NOW - 5, 2, "boots", size="L"), no_features)  # late: ignored
    assert profile.filters == ["colour:navy", "colour:black", "size:m"]
    apply_event(profile, search(NOW + 1, 3), no_features)  # a new search without anything
    assert (profile.query, profile.filters, profile.query_ts) == ("", [], NOW + 1)


def test_a_search_keeps_at_most_16_filters_of_at_most_128_characters() -> None:
    profile = UserProfile("u")
    many = [f"c{i}" for i in range(40)]
    apply_event(profile, search(NOW, 1, colour=many, note="x" * 500), no_features)
    assert profile.filters == [f"colour:c{i}" for i in range(16)]


def test_a_click_from_another_query_drops_the_filters_the_same_query_keeps_them() -> None:
    profile = UserProfile("u")
    apply_event(profile, search(NOW, 1, "chinos", size="M"), no_features)
    apply_event(profile, click(NOW + 1, 1, "chinos"), no_features)
    assert profile.filters == ["size:m"] and profile.query_ts == NOW + 1
    apply_event(profile, click(NOW + 2, 2, "boots"), no_features)
    assert (profile.query, profile.filters) == ("boots", [])


def test_filters_round_trip_and_profiles_without_them_store_nothing() -> None:
    profile = UserProfile("u")
    apply_event(profile, search(NOW, 1, "chinos", size="M"), no_features)
    assert UserProfile.from_bytes(profile.to_bytes()) == profile
    unfiltered = UserProfile("u")
    apply_event(unfiltered, search(NOW, 1, "chinos"), no_features)
    raw = unfiltered.to_dict()
    assert "qf" not in raw  # profiles stored before the field existed look like this
    assert UserProfile.from_bytes(orjson.dumps(raw)).filters == []


def clothes() -> Catalog:
    """Six navy-M items nobody buys among 60 popular items of other colours and sizes."""
    catalog = Catalog()
    for i in range(66):
        colour, size = (
            ("navy", "M") if i < 6 else (("red", "black", "navy")[i % 3], ("S", "L")[i % 2])
        )
        category = ("shirts", "trousers", "boots")[i % 3]
        attrs = {"colour": colour, "size": size, "category": ["clothing", category], "price": i}
        idx = catalog.upsert({"item_id": f"i{i}", "title": f"{category} {i}", "attributes": attrs})
        catalog.record_interaction([idx], 1.0 if i < 6 else 100.0 + i)
    return catalog


def test_filter_match_is_the_share_of_filter_attributes_met() -> None:
    catalog = clothes()
    profile = UserProfile("u", query_ts=NOW, filters=["colour:navy", "size:m", "in_stock:true"])
    groups = search_filters(profile, catalog)
    assert len(groups) == 2  # no item has an in_stock attribute: it cannot dilute the share
    idx = [catalog.index[i] for i in ("i0", "i8", "i6", "i7")]  # navy M, navy S, red S, black L
    assert filter_match(groups, catalog, np.array(idx), 0.5).tolist() == [0.5, 0.25, 0.0, 0.0]
    either = replace(profile, filters=["colour:navy", "colour:red"])
    got = filter_match(search_filters(either, catalog), catalog, np.array(idx), 1.0)
    assert got.tolist() == [1.0, 1.0, 1.0, 0.0]  # one attribute, any of its values


def test_a_filter_only_search_brings_the_matching_items_first_and_names_the_filters() -> None:
    catalog = clothes()
    cold = rank(UserProfile("u"), catalog, CoOccurrence(), RankingProfile(), NOW)
    assert not {i.item_id for i in cold[:10]} & {f"i{i}" for i in range(6)}
    profile = UserProfile("u")
    apply_event(profile, search(NOW - 60_000, 1, colour="Navy", size="M"), no_features)
    got = rank(profile, catalog, CoOccurrence(), RankingProfile(), NOW)
    assert {i.item_id for i in got[:6]} == {f"i{i}" for i in range(6)}
    assert "matches your filters: Navy, size M" in got[0].reasons
    stale = rank(profile, catalog, CoOccurrence(), RankingProfile(), NOW + 2 * DAY)
    assert not {i.item_id for i in stale[:6]} >= {f"i{i}" for i in range(6)}
    off = RankingProfile(w_search_filters=0.0)
    assert rank(profile, catalog, CoOccurrence(), off, NOW)[0].item_id not in {"i0", "i1"}


def test_query_candidates_prefer_items_meeting_every_filter() -> None:
    catalog = clothes()
    profile = UserProfile("u", query="trousers", query_ts=NOW, filters=["colour:navy", "size:m"])
    got = query_candidates(profile, catalog, 3, search_filters(profile, catalog))
    trousers_navy_m = [i for i in range(6) if i % 3 == 1]  # i1, i4: the only full matches
    assert {catalog.ids[i] for i in got} >= {f"i{i}" for i in trousers_navy_m}
    assert query_candidates(profile, catalog, 3).size == 3  # without filters: by popularity


@pytest.mark.parametrize("filters", [{}, {"in_stock": True}])
def test_filters_no_item_carries_change_no_score(filters: dict[str, Any]) -> None:
    catalog = clothes()
    profile = UserProfile("u")
    apply_event(profile, search(NOW, 1, **filters), no_features)
    got = rank(profile, catalog, CoOccurrence(), RankingProfile(), NOW)
    cold = rank(UserProfile("u"), catalog, CoOccurrence(), RankingProfile(), NOW)
    assert [i.item_id for i in got] == [i.item_id for i in cold]


def test_a_price_range_is_met_by_the_items_price_and_never_by_an_unknown_one() -> None:
    price = np.array([5.0, 20.0, 60.0, 61.0, np.nan])
    assert in_range(price, 20.0, 60.0).tolist() == [False, True, True, False, False]
    assert in_range(price, np.nan, 60.0).tolist() == [True, True, True, False, False]
    catalog = clothes()
    catalog.upsert({"item_id": "free", "attributes": {"colour": "navy"}})  # no price
    profile = UserProfile("u", query_ts=NOW, filters=["price_min:10", "price_max:20.5"])
    filters = search_filters(profile, catalog)
    assert (filters.groups, filters.price) == ([], (10.0, 20.5))
    idx = np.array([catalog.index[i] for i in ("i9", "i10", "i20", "i21", "free")])
    assert filter_match(filters, catalog, idx, 1.0).tolist() == [0, 1, 1, 0, 0]
    bad = replace(profile, filters=["price_max:cheap", "price_min:inf"])
    assert search_filters(bad, catalog).price is None


def test_a_price_filter_ranks_affordable_items_first_and_stays_out_of_affinities() -> None:
    catalog = clothes()
    profile = UserProfile("u")
    apply_event(profile, search(NOW, 1, "", colour="navy", price_max=30), no_features)
    assert set(profile.session) == {"colour:navy"}
    assert profile.filters == ["colour:navy", "price_max:30"]
    got = rank(profile, catalog, CoOccurrence(), RankingProfile(), NOW)
    prices = [int(item.item_id[1:]) for item in got[:10]]  # item i costs i
    assert max(prices) <= 30, prices  # the diversity caps may bring a red one at most 30
    assert all(i < 6 or i % 3 == 2 for i in prices[:5]), prices  # navy and at most 30 first
    assert "matches your filters: Navy, your price range" in got[0].reasons
