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


def test_every_batch_read_equals_a_read_from_scratch() -> None:
    """Randomised: the read side kept between reads (the counts array, refreshed from the items
    whose count changed) gives what a new object reading the same counts and rows gives, after
    observations, pairs, corrections and prunes, read at random moments."""
    import copy

    import numpy as np

    rng = np.random.default_rng(3)
    cooc = CoOccurrence(max_neighbours=8, top_k=3)
    cooc.tiebreak = lambda idx: idx * 1e-9
    for step in range(600):
        kind = rng.integers(0, 3)
        if kind == 0:
            items = rng.choice(40, size=int(rng.integers(1, 4)), replace=False).tolist()
            cooc.observe(items, rng.choice(40, size=2).tolist(), float(rng.choice([0.5, 1.0])))
        else:
            pairs = [
                (int(rng.integers(0, 40)), int(rng.integers(0, 40)), float(rng.choice(w)))
                for w in ([1.0, 2.0], [-1.0, -0.5, 1.0])[kind - 1 : kind]
                for _ in range(3)
            ]
            cooc.observe_pairs(pairs)
        if step % 3 == 0:
            queries = [(int(q), "view") for q in rng.integers(0, 45, size=int(rng.integers(1, 9)))]
            fresh = CoOccurrence(max_neighbours=8, top_k=3)
            fresh.tiebreak = cooc.tiebreak
            fresh.pairs, fresh.counts = copy.deepcopy(cooc.pairs), dict(cooc.counts)
            fresh._dirty.update(cooc.counts)  # every count read anew
            got, want = cooc.related_many(queries), fresh.related_many(queries)
            assert [a.tolist() for a in got] == [a.tolist() for a in want]
