"""Co-occurrence read model: cached neighbour lists are re-sorted only after 5 % new weight."""

from __future__ import annotations

from stream.domain.relations import STALE_SHARE, CoOccurrence


def test_cached_neighbours_refresh_once_new_weight_passes_the_stale_share() -> None:
    cooc = CoOccurrence()
    for _ in range(100):
        cooc.observe([1, 2])
    assert cooc.related(1)[0].tolist() == [2]
    cooc.observe([1, 3])  # 2 new units of pair weight on row 1 (count 101): within 5 %
    assert cooc.related(1)[0].tolist() == [2]
    while cooc._stale.get(1, 0.0) <= STALE_SHARE * cooc.counts[1]:
        cooc.observe([1, 3])
    assert cooc.related(1)[0].tolist() == [2, 3]


def test_a_new_item_is_related_at_once() -> None:
    cooc = CoOccurrence()
    cooc.observe([7, 8])
    assert cooc.related(7)[0].tolist() == [8]
    cooc.observe([7, 9])  # tiny counts: any new pair is more than 5 % of them
    assert sorted(cooc.related(7)[0].tolist()) == [8, 9]
