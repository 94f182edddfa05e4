"""Repeat flags by event time: hand-computed flags and counts that do not depend on arrival."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.domain import first_seen
from stream.domain.learned import RepeatModel

T0 = 1_700_000_000_000
H = 3_600_000

Event = tuple[str, int, tuple[str, ...]]  # topic, ts, items


def flags(events: list[Event]) -> list[str]:
    firsts: dict[str, list[object]] = {}
    return [first_seen.record(firsts, ts, items, topic == "orders") for topic, ts, items in events]


def counts(events: list[Event]) -> dict[str, object]:
    """The repeat propensities' counts after the events arrive in this order."""
    model = RepeatModel()
    for (topic, _, items), f in zip(events, flags(events), strict=True):
        model.observe_flags(topic, items, f, lambda _: None)
    return model.to_dict()


CLICK_THEN_ORDER = [("clicks", T0, ("A",)), ("orders", T0 + H, ("A",))]
ORDER_THEN_CLICK = [("orders", T0, ("A",)), ("clicks", T0 + H, ("A",))]


def test_a_look_then_a_purchase_in_time_order() -> None:
    assert flags(CLICK_THEN_ORDER) == ["n", "v"]
    # the order arrives first (orders topic ahead): it sees no look yet; the look corrects
    assert flags(CLICK_THEN_ORDER[::-1]) == ["n", "r"]
    want = {
        "rebuy": {"items": {"A": [0.0, 1.0]}, "categories": {}, "shop": [0.0, 1.0]},
        "view_return": {"items": {"A": [1.0, 1.0]}, "categories": {}, "shop": [1.0, 1.0]},
    }
    assert counts(CLICK_THEN_ORDER) == want == counts(CLICK_THEN_ORDER[::-1])


def test_a_look_after_the_purchase_is_no_view_return_trial() -> None:
    assert flags(ORDER_THEN_CLICK) == ["n", "b"]
    # the look arrives first and counts a trial; the earlier order takes it back
    assert flags(ORDER_THEN_CLICK[::-1]) == ["n", "x"]
    assert counts(ORDER_THEN_CLICK)["view_return"] == counts(ORDER_THEN_CLICK[::-1])["view_return"]
    assert counts(ORDER_THEN_CLICK[::-1])["view_return"]["shop"] == [0.0, 0.0]  # type: ignore[index]


def test_every_order_but_the_first_is_a_rebuy_whichever_arrives_first() -> None:
    orders = [("orders", T0 + k * H, ("A",)) for k in range(3)]
    assert flags(orders) == ["n", "b", "b"]
    assert flags(orders[::-1]) == ["n", "b", "b"]
    assert counts(orders)["rebuy"]["shop"] == [2.0, 3.0]  # type: ignore[index]


def test_an_order_between_a_late_look_and_an_early_purchase_is_y() -> None:
    """Bought at 2 h after a look at 1 h; then an order at 0 h arrives: the look no longer
    precedes the first purchase, so its trial and success are taken back."""
    events = [("clicks", T0 + H, ("A",)), ("orders", T0 + 2 * H, ("A",)), ("orders", T0, ("A",))]
    assert flags(events) == ["n", "v", "y"]
    assert counts(events) == counts(sorted(events, key=lambda e: e[1]))


def _history(seed: int) -> list[Event]:
    rng = random.Random(seed)
    topics = ["clicks", "orders", "dwell", "carts"]
    return [
        (
            rng.choice(topics),
            T0 + rng.randrange(6) * H,
            tuple(rng.sample("ABCD", rng.choice([1, 2]))),
        )
        for _ in range(25)
    ]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 9), order=st.randoms(use_true_random=False))
def test_counts_do_not_depend_on_arrival_order(seed: int, order: random.Random) -> None:
    events = _history(seed)
    shuffled = list(events)
    order.shuffle(shuffled)
    assert counts(shuffled) == counts(sorted(events, key=lambda e: e[1]))


def test_bad_flags_are_rejected_on_the_wire() -> None:
    from stream.domain.learning import Observation

    raw = Observation(None, ("A",), (), 1.0, flags="z").to_bytes()
    with pytest.raises(ValueError):
        Observation.from_bytes(raw)
    ok = Observation(None, ("A", "B"), (), 3.0, "orders", flags="ry", pairs=(("A", "B", 3.0),))
    assert Observation.from_bytes(ok.to_bytes()) == ok


def test_the_table_forgets_the_items_touched_longest_ago() -> None:
    firsts: dict[str, list[object]] = {}
    for n in range(first_seen.MAX_ITEMS + 1):
        first_seen.record(firsts, T0 + n, (f"i{n}",), n % 2 == 0)
    keep = first_seen.MAX_ITEMS - first_seen.MAX_ITEMS // 8
    assert len(firsts) == keep
    assert "i0" not in firsts and f"i{first_seen.MAX_ITEMS}" in firsts
    assert min(int(k[1:]) for k in firsts) == first_seen.MAX_ITEMS + 1 - keep
