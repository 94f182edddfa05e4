"""Co-occurrence pairs by event time: hand-computed cases and invariance under arrival order."""

from __future__ import annotations

import collections
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.domain import pairing

MIN = 60_000
T0 = 1_700_000_000_000

Event = tuple[int, str, tuple[str, ...], float]  # ts, event id, items, weight


def net_pairs(events: list[Event], topics: bool = False) -> dict[tuple[str, str], float]:
    """Apply events in the given arrival order; the summed pair weights they emitted. With
    ``topics``, weight 3 events are orders and the others clicks; else all one topic."""
    timeline: list[list[object]] = []
    total: collections.Counter[tuple[str, str]] = collections.Counter()
    for ts, eid, items, w in events:
        topic = ("orders" if w == 3.0 else "clicks") if topics else ""
        for a, b, pw in pairing.record(timeline, ts, eid, items, w, topic):
            total[(a, b)] += pw
    return {k: v for k, v in total.items() if abs(v) > 1e-9}


def test_pairs_point_from_the_earlier_event_and_weigh_the_later() -> None:
    click_a = (T0, "a", ("A",), 1.0)
    order_b = (T0 + 10 * MIN, "b", ("B",), 3.0)
    click_c = (T0 + 20 * MIN, "c", ("C",), 1.0)
    want = {("A", "B"): 3.0, ("A", "C"): 1.0, ("B", "C"): 1.0}
    assert net_pairs([click_a, order_b, click_c]) == want
    # the order arrives last (another topic): same pairs, same direction, same weights
    assert net_pairs([click_c, click_a, order_b]) == want


def test_events_further_apart_than_the_window_do_not_pair() -> None:
    early = (T0, "a", ("A",), 1.0)
    late = (T0 + pairing.WINDOW_MS + 1, "b", ("B",), 1.0)
    assert net_pairs([early, late]) == {} == net_pairs([late, early])


def test_items_of_one_event_do_not_pair_here() -> None:
    """Basket pairs come from the event itself (``CoOccurrence.observe``), not the timeline."""
    assert net_pairs([(T0, "o", ("A", "B"), 3.0)]) == {}


def test_a_late_event_between_two_pairs_takes_back_the_pair_it_separates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GAP 2: X, Y, Z pair all three ways; W arriving last between X and Y puts two entries
    between X and Z, so X→Z is un-counted, as if W had arrived in time."""
    monkeypatch.setattr(pairing, "GAP", 2)
    x, w, y, z = ((T0 + k * MIN, n, (n,), 1.0) for k, n in enumerate("XWYZ"))
    timeline: list[list[object]] = []
    for ts, eid, items, weight in (x, y, z):
        pairing.record(timeline, ts, eid, items, weight)
    emitted = pairing.record(timeline, *w)
    assert emitted == [("W", "Y", 1.0), ("W", "Z", 1.0), ("X", "W", 1.0), ("X", "Z", -1.0)]
    want = {("X", "W"): 1, ("X", "Y"): 1, ("W", "Y"): 1, ("W", "Z"): 1, ("Y", "Z"): 1}
    assert net_pairs([x, y, z, w]) == want == net_pairs([x, w, y, z])


def test_equal_times_are_ordered_by_event_hash_not_by_arrival() -> None:
    a, b = (T0, "first", ("A",), 1.0), (T0, "second", ("B",), 3.0)
    got = net_pairs([a, b])
    assert got == net_pairs([b, a])
    earlier = "A" if pairing.event_hash("first") < pairing.event_hash("second") else "B"
    assert [k[0] for k in got] == [earlier]


def _session(seed: int, n_events: int = 25) -> list[Event]:
    """A burst of one user's clicks and orders: baskets, repeated items, equal timestamps."""
    rng = random.Random(seed)
    out = []
    for n in range(n_events):
        ts = T0 + rng.choice([0, 1, 2, 5, 30]) * MIN + rng.randrange(3) * 1000
        items = tuple(rng.sample("ABCDEFGHIJKL", rng.choice([1, 1, 1, 2])))
        out.append((ts, f"e{n}", items, rng.choice([1.0, 3.0])))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 5), order=st.randoms(use_true_random=False))
def test_any_arrival_order_yields_the_time_order_pairs(seed: int, order: random.Random) -> None:
    """Any permutation, while the timeline keeps everything (< ``SINGLE_TOPIC_MAX`` entries)."""
    events = _session(seed)
    in_time = net_pairs(sorted(events))
    shuffled = list(events)
    order.shuffle(shuffled)
    assert net_pairs(shuffled) == pytest.approx(in_time)
    assert in_time and all(v > 0 for v in in_time.values())


def test_two_topics_interleaved_differently_give_the_same_pairs() -> None:
    """The kill test's situation: each topic in time order, the two merged differently; with
    two topics the timeline drops what the slower one can no longer reach."""
    events = sorted(_session(7, n_events=80))
    clicks = [e for e in events if e[3] == 1.0]
    orders = [e for e in events if e[3] == 3.0]
    want = net_pairs(events, topics=True)
    assert net_pairs(clicks + orders, topics=True) == pytest.approx(want)
    assert net_pairs(orders + clicks, topics=True) == pytest.approx(want)
    zipped = [e for pair in zip(orders, clicks, strict=False) for e in pair]
    rest = clicks[len(orders) :] if len(clicks) > len(orders) else orders[len(clicks) :]
    assert net_pairs(zipped + rest, topics=True) == pytest.approx(want)


def test_timeline_keeps_what_the_slowest_topic_can_still_pair_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GAP 2: clicks ran ahead to 10:50; orders are at 10:00. A later order (>= 10:00) can pair
    only with the 2 entries before 10:00 and the ones after it: the rest is dropped."""
    monkeypatch.setattr(pairing, "GAP", 2)
    timeline: list[list[object]] = []
    for k in range(6):  # clicks at 9:40 ... 9:55 and 10:30, 10:50
        ts = T0 + (k * 5 if k < 4 else 30 + (k - 4) * 20) * MIN
        pairing.record(timeline, ts, f"c{k}", (f"c{k}",), 1.0, "clicks")
    assert len(timeline) == 6  # one topic so far: kept (the first order may come late)
    pairing.record(timeline, T0 + 20 * MIN, "o", ("o",), 3.0, "orders")
    assert [e[3] for e in timeline] == ["c2", "c3", "o", "c4", "c5"]


def test_timeline_is_bounded_for_one_topic_and_overall() -> None:
    timeline: list[list[object]] = []
    for n in range(pairing.SINGLE_TOPIC_MAX + 5):
        pairing.record(timeline, T0 + n, f"e{n}", (f"i{n}",), 1.0, "clicks")
    assert len(timeline) == pairing.SINGLE_TOPIC_MAX
    assert timeline[-1][3] == f"i{pairing.SINGLE_TOPIC_MAX + 4}"
    pairing.record(timeline, T0 - 1, "o", ("o",), 3.0, "orders")  # orders lag: all kept
    sizes = []
    for n in range(pairing.RETAIN_MAX):
        pairing.record(timeline, T0 + 10**6 + n, f"f{n}", (f"j{n}",), 1.0, "clicks")
        sizes.append(len(timeline))
    assert max(sizes) == pairing.RETAIN_MAX
