"""Co-occurrence read model: every row read is exact (no staleness cache)."""

from __future__ import annotations

from stream.domain.relations import CoOccurrence


def test_a_row_reads_new_pair_weight_at_once() -> None:
    """No staleness cache: a row read after an observation already counts it, so what a
    worker ranks depends on what it learned, not on when it last read the row."""
    cooc = CoOccurrence()
    for _ in range(100):
        cooc.observe([1, 2])
    assert cooc.related(1)[0].tolist() == [2]
    cooc.observe([1, 3])  # 2 units of new weight on a row of count 101
    assert cooc.related(1)[0].tolist() == [2, 3]
    before = cooc.related(1)[1][0]
    for _ in range(300):  # only 2's count moves: row 1's strength for 2 follows it at once
        cooc.observe([2, 4])
        assert cooc.related(1)[1][0] <= before
    assert cooc.related(1)[1][0] < before


def test_a_new_item_is_related_at_once() -> None:
    cooc = CoOccurrence()
    cooc.observe([7, 8])
    assert cooc.related(7)[0].tolist() == [8]
    cooc.observe([7, 9])  # tiny counts: any new pair is more than 5 % of them
    assert sorted(cooc.related(7)[0].tolist()) == [8, 9]


def test_a_correction_reaches_rows_already_read() -> None:
    """A late event takes back a pair (negative weight): a row read before must not keep it."""
    cooc = CoOccurrence()
    cooc.observe_pairs([(1, 2, 1.0), (1, 3, 2.0)])
    ids, _ = cooc.related(1)
    assert ids.tolist() == [3, 2]
    cooc.observe_pairs([(1, 2, -1.0)])
    ids, _ = cooc.related(1)
    assert ids.tolist() == [3]
