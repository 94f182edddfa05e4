"""``GrowingTops`` merges (a few grown items, or more than ``SMALL``: those below a full
list's lowest key are dropped first) against a full recomputation at every read: ties,
repeats, zero growth and lists shorter than their depth included."""

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


def test_a_read_after_a_few_grown_items_merges_without_a_rebuild() -> None:
    """Within an epoch a read a few log entries behind merges them into the list (members that
    grew move up, an outsider that grew past the last member enters) and never asks for the
    members again: that is what keeps a read cheap in a large catalog."""
    scores = np.arange(1000, dtype=np.float64)
    rebuilt: list[int] = []
    everyone = np.arange(1000)

    def members() -> np.ndarray:
        rebuilt.append(1)
        return everyone

    tops = GrowingTops()

    def read() -> list[int]:
        return tops.top(
            None, 10, 100, 0, members, lambda g: np.ones(g.size, bool), scores.__getitem__, 1000
        ).tolist()

    read()
    for i in (5, 995):
        scores[i] += 10.0
        tops.grew([i])
        read()
    scores[3] += 2000.0  # enters at the top
    scores[998] += 1.5  # a member that moves up past 999
    scores[500] += 0.5  # grows, still far below the list's lowest key
    tops.grew([3, 998, 3, 500])
    assert read() == [3, 995, 998, 999, 997, 996, 994, 993, 992, 991]
    assert rebuilt == [1]
