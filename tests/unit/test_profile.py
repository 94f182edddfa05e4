"""Per-user profile: decay, event signs, horizons, search filters, query set, bounds, replays."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.domain.events import UserEvent
from stream.domain.profile import (
    DEFAULT_PROFILE_CONFIG,
    ProfileConfig,
    UserProfile,
    _bump,
    apply_event,
    decayed,
    event_weight,
)

CFG = DEFAULT_PROFILE_CONFIG
SESSION_TAU = 30 * 60 * 1000.0  # 30 min
LONG_TAU = 21 * 24 * 3600 * 1000.0  # 21 days
T0 = 1_700_000_000_000
HOUR = 3600 * 1000

FEATURES = {
    "i1": ["brand:acme", "category:shoes"],
    "i2": ["brand:zeta", "category:shirts"],
}


def features_of(item_id: str) -> list[str]:
    return FEATURES.get(item_id, [f"item:{item_id}"])


_counter = 0


def ev(
    topic: str,
    ts: int,
    items: tuple[str, ...] = (),
    *,
    qty: tuple[int, ...] = (),
    action: str | None = None,
    dwell_ms: int = 0,
    filters: dict[str, Any] | None = None,
    source: tuple[str, int, int] | None = None,
) -> UserEvent:
    global _counter
    _counter += 1
    return UserEvent(
        topic=topic,
        event_id=f"e{_counter}",
        user_id="u1",
        ts=ts,
        item_ids=items,
        quantities=qty or tuple(1 for _ in items),
        action=action,
        dwell_ms=dwell_ms,
        filters=filters,
        source=source,
    )


def qs(profile: UserProfile) -> list[list[Any]]:
    """The query set as [item_id, role, ts] (entries may carry more fields after these)."""
    return [list(q[:3]) for q in profile.queries]


def applied(*events: UserEvent, cfg: ProfileConfig = CFG) -> UserProfile:
    profile = UserProfile(user_id="u1")
    for event in events:
        assert apply_event(profile, event, features_of, cfg)
    return profile


# -- decay ---------------------------------------------------------------------------------------
def test_config_horizons_are_the_documented_ones() -> None:
    assert CFG.session_tau_ms == SESSION_TAU
    assert CFG.long_tau_ms == LONG_TAU


@pytest.mark.parametrize(
    ("weight", "since", "now", "tau", "expected"),
    [
        (10.0, 0, 1000, 1000, 10.0 / math.e),  # one tau: 1/e
        (8.0, 500, 500 + 1000 * math.log(2), 1000, 4.0),  # one half-life
        (3.0, 0, 4000, 1000, 3.0 * 0.018315638888734179),  # e^-4
        (-6.0, 0, 2000, 1000, -6.0 * 0.1353352832366127),  # negative weights decay toward 0
        (5.0, 100, 100, 1000, 5.0),  # no time passed
        (5.0, 2000, 1000, 1000, 5.0),  # "now" before "since" (out of order): never grows
    ],
)
def test_decayed_hand_computed(
    weight: float, since: float, now: float, tau: float, expected: float
) -> None:
    assert decayed(weight, since, now, tau) == pytest.approx(expected, rel=1e-12)


def test_bump_new_then_later_then_late() -> None:
    table: dict[str, list[float]] = {}
    _bump(table, "f", 2.0, 0, 1000.0)
    assert table["f"] == [2.0, 0.0]
    _bump(table, "f", 1.0, 1000, 1000.0)  # 2/e + 1, stamped at t=1000
    assert table["f"][0] == pytest.approx(2.0 / math.e + 1.0)
    assert table["f"][1] == 1000.0
    _bump(table, "f", 1.0, 0, 1000.0)  # a late event adds what it would have decayed to
    assert table["f"][0] == pytest.approx(2.0 / math.e + 1.0 + 1.0 / math.e)
    assert table["f"][1] == 1000.0  # the stamp does not move back


# -- signs and magnitudes ------------------------------------------------------------------------
def _session_weight(profile: UserProfile, feature: str) -> float:
    return profile.session[feature][0]


@pytest.mark.parametrize(
    ("event_kwargs", "expected"),
    [
        ({"topic": "clicks"}, 1.0),
        ({"topic": "dwell", "dwell_ms": 10_000}, 0.5),
        ({"topic": "dwell", "dwell_ms": 20_000}, 1.0),
        ({"topic": "dwell", "dwell_ms": 45_000}, 2.25),
        ({"topic": "dwell", "dwell_ms": 60_000}, 3.0),  # exactly the cap
        ({"topic": "dwell", "dwell_ms": 600_000}, 3.0),  # capped
        ({"topic": "carts", "action": "add"}, 3.0),
        ({"topic": "carts", "action": "favorite"}, 2.0),
        ({"topic": "carts", "action": "remove"}, -2.0),
        ({"topic": "carts", "action": "unfavorite"}, -1.5),
        ({"topic": "returns"}, -6.0),
        ({"topic": "orders"}, 5.0),
    ],
)
def test_event_signs_and_weights(event_kwargs: dict[str, Any], expected: float) -> None:
    kwargs = dict(event_kwargs)
    topic = kwargs.pop("topic")
    profile = applied(ev(topic, T0, ("i1",), **kwargs))
    for feature in FEATURES["i1"]:
        assert profile.session[feature] == [pytest.approx(expected), float(T0)]
        assert profile.long_term[feature] == [pytest.approx(expected), float(T0)]
    assert "brand:zeta" not in profile.session  # only the touched item's features move


def test_dwell_scales_with_time() -> None:
    short = event_weight(ev("dwell", T0, ("i1",), dwell_ms=5_000))
    long = event_weight(ev("dwell", T0, ("i1",), dwell_ms=30_000))
    assert short == pytest.approx(0.25)
    assert long == pytest.approx(1.5)


def test_purchase_is_quantity_scaled() -> None:
    one = applied(ev("orders", T0, ("i1",), qty=(1,)))
    three = applied(ev("orders", T0, ("i1",), qty=(3,)))
    assert _session_weight(one, "brand:acme") == pytest.approx(5.0)
    # 5 · (1 + ln 3) = 10.4930614433...
    assert _session_weight(three, "brand:acme") == pytest.approx(10.493061443340549)
    assert three.long_term["brand:acme"][0] == pytest.approx(10.493061443340549)


def test_order_with_two_lines_scales_each_line() -> None:
    profile = applied(ev("orders", T0, ("i1", "i2"), qty=(1, 2)))
    assert _session_weight(profile, "brand:acme") == pytest.approx(5.0)
    assert _session_weight(profile, "brand:zeta") == pytest.approx(5.0 * (1 + math.log(2)))
    assert profile.just_bought == ["i1", "i2"]


def test_return_after_purchase_turns_interest_negative() -> None:
    profile = applied(ev("orders", T0, ("i1",)), ev("returns", T0, ("i1",)))
    assert _session_weight(profile, "brand:acme") == pytest.approx(5.0 - 6.0)


def test_two_horizons() -> None:
    profile = applied(ev("clicks", T0, ("i1",)))
    later = T0 + 2 * HOUR
    session_only = profile.affinities(later, session_weight=1.0, long_weight=0.0)
    long_only = profile.affinities(later, session_weight=0.0, long_weight=1.0)
    # session: tau 30 min, 2 h = 4 tau -> e^-4
    assert session_only["brand:acme"] == pytest.approx(math.exp(-4.0), rel=1e-9)
    assert session_only["brand:acme"] == pytest.approx(0.01831563888873418, rel=1e-9)
    # long term: tau 21 days, 2 h -> e^-(2/504) = 0.99604...
    assert long_only["brand:acme"] == pytest.approx(math.exp(-2.0 / 504.0), rel=1e-9)
    assert long_only["brand:acme"] > 0.99
    combined = profile.affinities(later)
    assert combined["brand:acme"] == pytest.approx(math.exp(-4.0) + math.exp(-2.0 / 504.0))

    # a second click two hours later folds the decayed weight in and restamps
    apply_event(profile, ev("clicks", later, ("i1",)), features_of)
    assert profile.session["brand:acme"] == [pytest.approx(1.0 + math.exp(-4.0)), float(later)]
    assert profile.long_term["brand:acme"] == [
        pytest.approx(1.0 + math.exp(-2.0 / 504.0)),
        float(later),
    ]


def test_search_filters_write_session_only() -> None:
    profile = applied(
        ev("searches", T0, filters={"size": "M", "colour": ["Navy", "black"], "price": 40})
    )
    # price 40 -> band floor(log2 40) + 3 = 5 + 3 = 8
    assert set(profile.session) == {"size:m", "colour:navy", "colour:black", "price_band:8"}
    for slot in profile.session.values():
        assert slot == [pytest.approx(5.0), float(T0)]
    assert profile.long_term == {}
    assert profile.queries == []


def test_search_without_filters_changes_nothing_but_counters() -> None:
    profile = applied(ev("searches", T0))
    assert profile.session == {} and profile.long_term == {} and profile.queries == []
    assert profile.events == 1 and profile.last_ts == T0


# -- query set -----------------------------------------------------------------------------------
def test_query_set_bounded_newest_first() -> None:
    cfg = replace(CFG, max_query_items=3)
    profile = applied(*(ev("clicks", T0 + i, (f"x{i}",)) for i in range(5)), cfg=cfg)
    assert qs(profile) == [
        ["x4", "view", T0 + 4],
        ["x3", "view", T0 + 3],
        ["x2", "view", T0 + 2],
    ]


def test_query_set_default_limit_is_100() -> None:
    profile = applied(*(ev("clicks", T0 + i, (f"x{i}",)) for i in range(150)))
    assert len(profile.queries) == 100
    assert qs(profile)[0] == ["x149", "view", T0 + 149]
    assert qs(profile)[-1] == ["x50", "view", T0 + 50]


def test_query_set_newest_first_for_out_of_order_events() -> None:
    profile = applied(
        ev("clicks", T0 + 3000, ("a",)),
        ev("clicks", T0 + 1000, ("b",)),
        ev("clicks", T0 + 2000, ("c",)),
    )
    assert qs(profile) == [
        ["a", "view", T0 + 3000],
        ["c", "view", T0 + 2000],
        ["b", "view", T0 + 1000],
    ]


def test_query_set_late_duplicate_keeps_newest_timestamp() -> None:
    """A late (older) view of an item already in the set must not make it look older."""
    profile = applied(
        ev("clicks", T0 + 3000, ("a",)),
        ev("clicks", T0 + 2000, ("b",)),
        ev("clicks", T0 + 1000, ("a",)),  # arrives late
    )
    assert qs(profile) == [["a", "view", T0 + 3000], ["b", "view", T0 + 2000]]


def test_query_roles_and_dedupe_per_item_and_role() -> None:
    profile = applied(
        ev("clicks", T0, ("a",)),
        ev("dwell", T0 + 1, ("a",), dwell_ms=20_000),
        ev("carts", T0 + 2, ("b",), action="add"),
        ev("orders", T0 + 3, ("a", "c")),
        ev("clicks", T0 + 4, ("a",)),
    )
    assert len(profile.queries) == 4
    assert qs(profile)[0] == ["a", "view", T0 + 4]  # click + dwell + click: one entry
    # the two lines of one order share a timestamp; their relative order is unspecified
    assert sorted(qs(profile)[1:3]) == [["a", "buy", T0 + 3], ["c", "buy", T0 + 3]]
    assert qs(profile)[3] == ["b", "view", T0 + 2]


def test_return_removes_item_from_query_set_and_records_it() -> None:
    profile = applied(
        ev("clicks", T0, ("a",)),
        ev("orders", T0 + 1, ("a", "b")),
        ev("returns", T0 + 2, ("a",)),
    )
    assert [q[0] for q in profile.queries] == ["b"]
    assert profile.returned == {"a": T0 + 2}


def test_cart_remove_and_unfavorite_drop_view_role_only() -> None:
    profile = applied(
        ev("orders", T0, ("a",)),
        ev("carts", T0 + 1, ("a",), action="add"),
        ev("carts", T0 + 2, ("b",), action="favorite"),
        ev("carts", T0 + 3, ("a",), action="remove"),
        ev("carts", T0 + 4, ("b",), action="unfavorite"),
    )
    assert qs(profile) == [["a", "buy", T0]]


def test_returned_is_bounded_oldest_dropped() -> None:
    cfg = replace(CFG, max_returned=2)
    profile = applied(
        ev("returns", T0 + 5, ("a",)),
        ev("returns", T0 + 1, ("b",)),
        ev("returns", T0 + 9, ("c",)),
        cfg=cfg,
    )
    assert profile.returned == {"a": T0 + 5, "c": T0 + 9}


def test_prune_keeps_strongest_features() -> None:
    cfg = replace(CFG, max_session_features=2, max_long_features=3)
    feats = {"p": ["f:a", "f:b", "f:c", "f:d"]}
    profile = UserProfile(user_id="u1")
    profile.session = {"f:a": [10.0, float(T0)], "f:b": [-9.0, float(T0)]}
    profile.long_term = {"f:x": [0.1, float(T0)]}
    apply_event(profile, ev("clicks", T0, ("p",)), feats.__getitem__, cfg)
    # session: a=11, b=-8, c=1, d=1 -> keep the two largest |w|
    assert set(profile.session) == {"f:a", "f:b"}
    assert profile.session["f:b"][0] == pytest.approx(-8.0)
    # long term: x=0.1, a..d=1 -> x is the weakest and goes; one of a..d goes too
    assert len(profile.long_term) == 3
    assert "f:x" not in profile.long_term


# -- bounds whatever the user does ----------------------------------------------------------------
_ITEMS = [f"it{i}" for i in range(160)]
_ITEM_FEATURES = {
    item: [f"brand:b{i % 37}", f"category:c{i % 11}", f"colour:k{i % 23}", f"size:s{i % 7}"]
    for i, item in enumerate(_ITEMS)
}


def _random_features(item_id: str) -> list[str]:
    return _ITEM_FEATURES.get(item_id, [])


_item = st.sampled_from(_ITEMS)
_ts = st.integers(min_value=T0 - 10 * HOUR, max_value=T0 + 10 * HOUR)
_event = st.one_of(
    st.builds(lambda i, t: ev("clicks", t, (i,)), _item, _ts),
    st.builds(lambda i, t, d: ev("dwell", t, (i,), dwell_ms=d), _item, _ts, st.integers(0, 10**6)),
    st.builds(
        lambda i, t, a: ev("carts", t, (i,), action=a),
        _item,
        _ts,
        st.sampled_from(["add", "remove", "favorite", "unfavorite"]),
    ),
    st.builds(
        lambda items, t: ev("orders", t, tuple(items), qty=tuple(range(1, len(items) + 1))),
        st.lists(_item, min_size=1, max_size=5),
        _ts,
    ),
    st.builds(lambda i, t: ev("returns", t, (i,)), _item, _ts),
    st.builds(
        lambda f, t: ev("searches", t, filters=f),
        st.dictionaries(
            st.sampled_from(["size", "colour", "brand", "material", "fit"]),
            st.one_of(
                st.text(min_size=1, max_size=6),
                st.lists(st.text(min_size=1, max_size=6), max_size=4),
            ),
            max_size=5,
        ),
        _ts,
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event, min_size=1, max_size=120))
def test_bounds_hold_with_small_limits(events: list[UserEvent]) -> None:
    cfg = replace(
        CFG, max_session_features=5, max_long_features=9, max_query_items=7, max_returned=3
    )
    profile = UserProfile(user_id="u1")
    for event in events:
        apply_event(profile, event, _random_features, cfg)
        assert len(profile.session) <= 5
        assert len(profile.long_term) <= 9
        assert len(profile.queries) <= 7
        assert len(profile.returned) <= 3
        stamps = [q[2] for q in profile.queries]
        assert stamps == sorted(stamps, reverse=True)
        keys = [(q[0], q[1]) for q in profile.queries]
        assert len(keys) == len(set(keys))
    assert profile.events == len(events)
    assert profile.last_ts == max(e.ts for e in events)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event, min_size=50, max_size=300))
def test_bounds_hold_with_default_limits(events: list[UserEvent]) -> None:
    profile = UserProfile(user_id="u1")
    for event in events:
        apply_event(profile, event, _random_features)
    assert len(profile.session) <= CFG.max_session_features
    assert len(profile.long_term) <= CFG.max_long_features
    assert len(profile.queries) <= 100
    assert len(profile.returned) <= CFG.max_returned
    assert len(profile.just_bought) <= CFG.max_query_items
    assert UserProfile.from_bytes(profile.to_bytes()) == profile


# -- idempotency ---------------------------------------------------------------------------------
def test_replayed_offsets_are_skipped() -> None:
    profile = UserProfile(user_id="u1")
    assert apply_event(profile, ev("clicks", T0, ("i1",), source=("clicks", 0, 5)), features_of)
    assert profile.offsets == {"clicks:0": 5}
    snapshot = profile.to_bytes()
    # same offset, and an older one: skipped, nothing changes
    for offset in (5, 4, 0):
        again = ev("orders", T0 + 10, ("i2",), source=("clicks", 0, offset))
        assert apply_event(profile, again, features_of) is False
        assert profile.to_bytes() == snapshot
    # another partition and a newer offset are applied
    assert apply_event(profile, ev("clicks", T0 + 1, ("i2",), source=("clicks", 1, 0)), features_of)
    assert apply_event(profile, ev("clicks", T0 + 2, ("i2",), source=("clicks", 0, 6)), features_of)
    assert profile.offsets == {"clicks:0": 6, "clicks:1": 0}
    assert profile.events == 3
    assert profile.session["brand:zeta"][0] == pytest.approx(
        decayed(1.0, T0 + 1, T0 + 2, SESSION_TAU) + 1.0
    )


def test_events_without_source_are_always_applied() -> None:
    profile = UserProfile(user_id="u1")
    event = ev("clicks", T0, ("i1",))
    assert apply_event(profile, event, features_of)
    assert apply_event(profile, event, features_of)
    assert profile.session["brand:acme"][0] == pytest.approx(2.0)


# -- serialisation -------------------------------------------------------------------------------
def test_to_bytes_from_bytes_roundtrip() -> None:
    profile = applied(
        ev("clicks", T0, ("i1",), source=("clicks", 3, 17)),
        ev("searches", T0 + 1, filters={"size": "M"}),
        ev("orders", T0 + 2, ("i1", "i2"), qty=(2, 1)),
        ev("returns", T0 + 3, ("i2",)),
    )
    profile.version = 7
    profile.last_items = ["i1", "x"]
    raw = profile.to_bytes()
    assert isinstance(raw, bytes)
    back = UserProfile.from_bytes(raw)
    assert back == profile
    assert back.to_bytes() == raw
    assert back.affinities(T0 + HOUR) == profile.affinities(T0 + HOUR)
    # the decoded profile keeps working
    assert apply_event(back, ev("clicks", T0 + 4, ("i1",), source=("clicks", 3, 18)), features_of)
    assert not apply_event(
        back, ev("clicks", T0 + 5, ("i1",), source=("clicks", 3, 17)), features_of
    )


def _touched(want: list[list[Any]], item: str, role: str, ts: int, limit: int) -> list[list[Any]]:
    """The query set after a touch, by its definition: the entry at its newest time, the
    others as they were, sorted by ``(-ts, item, role)``, cut to ``limit``."""
    kept = [q for q in want if not (q[0] == item and q[1] == role)]
    newest = max([ts] + [q[2] for q in want if q[0] == item and q[1] == role])
    return sorted([[item, role, newest], *kept], key=lambda q: (-q[2], q[0], q[1]))[:limit]


def _queries(
    items: str, max_ts: int, **sizes: Any
) -> st.SearchStrategy[list[tuple[str, str, int]]]:
    """Lists of (item, role, ts) query entries over ``items``, ts in [0, ``max_ts``]."""
    entry = st.tuples(
        st.sampled_from(list(items)),
        st.sampled_from(["view", "buy"]),
        st.integers(min_value=0, max_value=max_ts),
    )
    return st.lists(entry, **sizes)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "e"]),
            st.sampled_from(["view", "buy"]),
            st.integers(min_value=0, max_value=4),
        ),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=12),
)
def test_query_set_order_is_the_key_sort(touches: list[tuple[str, str, int]], limit: int) -> None:
    """The query set after any sequence of touches, with many equal times, is what sorting by
    ``(-ts, item, role)`` after each touch gives (the order the bound cuts by)."""
    from stream.domain.profile import _touch_queries

    profile = UserProfile(user_id="u")
    want: list[list[Any]] = []
    for item, role, ts in touches:
        _touch_queries(profile, {(item, role): T0 + ts}, limit)
        want = _touched(want, item, role, T0 + ts, limit)
        assert profile.queries == want


@settings(max_examples=200, deadline=None)
@given(
    _queries("abcdef", 3, max_size=12),
    _queries("abcg", 4, min_size=1, max_size=8),
    st.integers(min_value=1, max_value=12),
)
def test_a_query_set_in_any_stored_order_is_sorted_by_the_first_touch(
    stored: list[tuple[str, str, int]], touches: list[tuple[str, str, int]], limit: int
) -> None:
    """A stored list need not be in the key order (an older release, a hand-built profile):
    each touch still gives what sorting by ``(-ts, item, role)`` gives, as a full sort per
    touch did, whether the list it finds is in order (binary insertion) or not (a sort)."""
    from stream.domain.profile import _touch_queries

    profile = UserProfile(user_id="u")
    profile.queries = [[item, role, T0 + ts] for item, role, ts in stored]  # any order, repeats
    want = [list(q) for q in profile.queries]
    for item, role, ts in touches:
        _touch_queries(profile, {(item, role): T0 + ts}, limit)
        want = _touched(want, item, role, T0 + ts, limit)
        assert profile.queries == want


@settings(max_examples=300, deadline=None)
@given(
    # every touch leaves one entry an (item, role)
    _queries("abcdef", 3, max_size=14, unique_by=lambda q: (q[0], q[1])),
    st.booleans(),
    _queries("abcgh", 4, min_size=1, max_size=10),
    st.integers(min_value=1, max_value=12),
)
def test_an_event_s_touches_at_once_are_its_touches_one_by_one(
    stored: list[tuple[str, str, int]],
    in_order: bool,
    touches: list[tuple[str, str, int]],
    limit: int,
) -> None:
    """A basket updates the query set in one pass (``_touch_queries``); what it leaves is what
    touching its items one at a time leaves, from a stored list in the key order or in any
    order, whatever the bound drops on the way."""
    from stream.domain.profile import _touch_queries

    start = [[item, role, T0 + ts] for item, role, ts in stored]
    if in_order:
        start = _touched(start, "z", "view", T0 - 1, 20)[:-1]  # sorted, the extra one cut off
    one_by_one = UserProfile(user_id="u", queries=[list(q) for q in start])
    for item, role, ts in touches:
        _touch_queries(one_by_one, {(item, role): T0 + ts}, limit)
    at_once = UserProfile(user_id="u", queries=[list(q) for q in start])
    batch: dict[tuple[str, str], int] = {}
    for item, role, ts in touches:
        batch[(item, role)] = max(batch.get((item, role), 0), T0 + ts)
    _touch_queries(at_once, batch, limit)
    assert at_once.queries == one_by_one.queries
