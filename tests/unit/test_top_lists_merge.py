"""``GrowingTops`` merges (the Python one for a few grown items, the numpy one for more) against
a full recomputation at every read: ties, repeats, zero growth and lists shorter than their
depth included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.domain.top_lists import SMALL, GrowingTops, best

N = 40

#: one step: items that grow (repeats allowed) by one amount (0 grows nothing; -1 shrinks them,
#: which starts a new epoch), then which lists are read, with which k
steps = st.lists(
    st.tuples(
        st.lists(st.integers(0, N - 1), min_size=1, max_size=6),
        st.sampled_from([0.0, 1.0, 1.0, 2.0, -1.0]),
        st.lists(st.tuples(st.integers(0, 3), st.integers(1, 12)), max_size=4),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps, some_big=st.booleans())
def test_every_read_equals_a_full_recomputation(
    steps: list[tuple[list[int], float, list[tuple[int, int]], bool]], some_big: bool
) -> None:
    scores = np.zeros(N)  # whole numbers: many exact ties, broken by index
    tops = GrowingTops()
    epoch = 0
    # list 0 holds every item, the others every 2nd, 3rd, 5th (depth 6 > some member counts)
    listed = [np.arange(N)] + [np.arange(0, N, m) for m in (2, 3, 5)]

    def key(items: np.ndarray) -> np.ndarray:
        return scores[items]

    for grown, amount, reads, big in steps:
        if some_big and big:  # past ``SMALL`` log entries: the numpy merge
            grown = (grown * SMALL)[: SMALL + 1]
        for i in grown:
            scores[i] += amount
        if amount < 0:
            epoch += 1
        else:
            tops.grew(grown)
        for name, k in reads:
            members = listed[name]
            got = tops.top(
                name,
                k,
                6,
                epoch,
                lambda members=members: members,
                lambda g, members=members: np.isin(g, members),
                key,
                members.size,
            )
            assert got.tolist() == best(members, k, key).tolist()


def test_a_small_merge_reads_only_the_grown_items_keys() -> None:
    """Once a list has been merged once, a read after a few grown items keys only those items,
    not the list's members (the old merge keyed every member to find the list's lowest key)."""
    scores = np.arange(1000, dtype=np.float64)
    keyed: list[int] = []

    def key(items: np.ndarray) -> np.ndarray:
        keyed.append(items.size)
        return scores[items]

    tops = GrowingTops()
    everyone = np.arange(1000)

    def read() -> list[int]:
        return tops.top(
            None, 10, 100, 0, lambda: everyone, lambda g: np.ones(g.size, bool), key, 1000
        ).tolist()

    read()
    for i in (5, 995):  # first merge (remembers the members' keys), then a steady one
        scores[i] += 10.0
        tops.grew([i])
        read()
    keyed.clear()
    scores[3] += 2000.0  # enters at the top
    scores[998] += 1.5  # a member that moves up past 999
    tops.grew([3, 998, 3])
    assert read() == [3, 995, 998, 999, 997, 996, 994, 993, 992, 991]
    assert sum(keyed) <= 3
