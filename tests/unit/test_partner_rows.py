"""Co-occurrence rows kept as arrays (``PartnerRows``) behave exactly as the dict rows they
replaced: same partners, same counts float for float, same order inside a row (ties downstream
are broken by position), same reads."""

from __future__ import annotations

import gc
from itertools import pairwise

import numpy as np
import pytest

from stream.domain.partner_rows import PartnerRows
from stream.domain.relations import CoOccurrence


class DictRows:
    """The previous write side of ``CoOccurrence``: one dict per row (the reference)."""

    def __init__(self, max_neighbours: int, tiebreak: object) -> None:
        self.max_neighbours = max_neighbours
        self.tiebreak = tiebreak
        self.pairs: dict[int, dict[int, float]] = {}

    def add(self, i: int, j: int, weight: float) -> None:
        row = self.pairs.get(i)
        if row is None:
            row = self.pairs[i] = {}
        if weight < 0:
            if j not in row:
                return
            left = row[j] + weight
            if left <= 1e-9:
                del row[j]
            else:
                row[j] = left
            return
        row[j] = row.get(j, 0.0) + weight
        if len(row) > self.max_neighbours:
            keys = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            counts = np.fromiter(row.values(), dtype=np.float64, count=len(row))
            rank = counts + self.tiebreak(keys)  # type: ignore[operator]
            top = np.argsort(-rank, kind="stable")[: self.max_neighbours // 2]
            self.pairs[i] = {int(keys[t]): float(counts[t]) for t in top}


def test_a_row_appends_updates_and_removes_in_dict_order() -> None:
    rows = PartnerRows()
    want: dict[int, float] = {}
    rng = np.random.default_rng(5)
    for _ in range(2_000):
        j = int(rng.integers(0, 30))
        if j in want and rng.random() < 0.3:
            rows.remove(7, j)
            del want[j]
        else:
            w = float(rng.choice([0.5, 1.0, 3.0]))
            assert rows.add(7, j, w) == len(want) + (j not in want)
            want[j] = want.get(j, 0.0) + w
        assert list(rows.as_dict(7).items()) == list(want.items())
        assert rows.size(7) == len(want)
    keys, vals = rows.arrays(7)
    assert keys.tolist() == list(want) and vals.tolist() == list(want.values())
    got, counts, lens = rows.read([3, 7, 7])
    assert lens == [0, len(want), len(want)]
    assert got.tolist() == list(want) * 2 and counts.tolist() == list(want.values()) * 2


def test_rows_grow_past_their_first_capacity_and_are_not_walked_by_the_gc() -> None:
    rows = PartnerRows()
    rows.replace(1, [(j, float(j)) for j in range(3)])
    for j in range(3, 300):
        rows.add(1, j, float(j))
    assert rows.as_dict(1) == {j: float(j) for j in range(300)}
    assert rows.get(1, 299) == 299.0 and rows.get(1, 300) is None and rows.get(2, 0) is None
    rows.touch(2)
    assert list(rows.items()) == [1, 2] and rows.size(2) == 0
    # a row adds no object the garbage collector tracks (see the module docstring)
    gc.collect()
    inner = [rows._slot[1], rows._slot[2], rows._at, rows._room, rows._keys]
    assert not any(gc.is_tracked(obj) for obj in [*inner, rows._vals])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cooccurrence_equals_the_dict_rows_it_replaced(seed: int) -> None:
    """Random observations, pair corrections (negative weights) and prunes (small rows): after
    every step the rows equal the dict reference (order included), and reads of random query
    sets equal reads from a fresh object restored from the reference's dicts."""
    rng = np.random.default_rng(seed)
    tiebreak = lambda idx: np.asarray(idx) * 1e-9  # noqa: E731
    cooc = CoOccurrence(max_neighbours=8, top_k=3)
    cooc.tiebreak = tiebreak
    ref = DictRows(8, tiebreak)
    for step in range(1_500):
        if rng.random() < 0.4:
            items = rng.choice(40, size=int(rng.integers(1, 4)), replace=False).tolist()
            context = rng.choice(40, size=2).tolist()
            cooc.observe(items, context, 1.0)
            unique = list(dict.fromkeys(items))[:30]
            partners = list(dict.fromkeys([*unique, *context]))[:40]
            for i in unique:
                for j in partners:
                    if i != j:
                        ref.add(i, j, 1.0)
                        ref.add(j, i, 1.0)
        else:
            pairs = [
                (int(rng.integers(0, 40)), int(rng.integers(0, 40)), float(w))
                for w in rng.choice([2.0, 1.0, -0.5, -1.0], size=3)
            ]
            cooc.observe_pairs(pairs)
            for i, j, w in pairs:
                if i != j:
                    ref.add(i, j, w)
                    ref.add(j, i, w)
        got = cooc.pairs
        assert [(i, list(r.items())) for i, r in got.items()] == [
            (i, list(r.items())) for i, r in ref.pairs.items()
        ]
        if step % 7 == 0:
            queries = [(int(q), "view") for q in rng.integers(0, 45, size=int(rng.integers(1, 9)))]
            items = [q for q, _ in queries]  # what the dict read walked, entry by entry
            keys, counts, lens = cooc.rows.read(items)
            assert keys.tolist() == [j for q in items for j in ref.pairs.get(q, {})]
            assert counts.tolist() == [w for q in items for w in ref.pairs.get(q, {}).values()]
            assert lens == [len(ref.pairs.get(q, {})) for q in items]
            fresh = CoOccurrence(max_neighbours=8, top_k=3)
            fresh.tiebreak = tiebreak
            fresh.restore(dict(cooc.counts), ref.pairs)
            got_rows, want_rows = cooc.related_many(queries), fresh.related_many(queries)
            assert [a.tolist() for a in got_rows] == [a.tolist() for a in want_rows]
            for q, _ in queries:
                assert [a.tolist() for a in cooc.related(q)] == [
                    a.tolist() for a in fresh.related(q)
                ]


def test_rows_keep_disjoint_regions_and_reuse_the_ones_left() -> None:
    """Rows that grow, shrink (a prune) and are replaced keep regions that overlap neither each
    other nor a free one, and a region a row left is taken by the next row of its capacity
    (on the full bench the free regions are ~1 % of the arena)."""
    rng = np.random.default_rng(11)
    rows = PartnerRows()
    want: dict[int, dict[int, float]] = {}
    for _ in range(6_000):
        i = int(rng.integers(0, 25))
        if rng.random() < 0.02:
            n = int(rng.integers(0, 40))
            entries = [(int(j), float(j)) for j in rng.choice(500, size=n, replace=False)]
            rows.replace(i, entries)
            want[i] = dict(entries)
        else:
            j = int(rng.integers(0, 500))
            rows.add(i, j, 1.0)
            want.setdefault(i, {})
            want[i][j] = want[i].get(j, 0.0) + 1.0
    assert {i: rows.as_dict(i) for i in rows.items()} == want
    spans = [(rows._at[i], rows._room[i]) for i in rows.items()]
    spans += [(at, room) for room, free in rows._free.items() for at in free]
    spans.sort()
    assert all(a + n <= b for (a, n), (b, _) in pairwise(spans))  # disjoint
    assert all(rows.size(i) <= rows._room[i] for i in rows.items())
    assert sum(n for _, n in spans) == rows._end  # every region is a row's or free
    # a row that outgrows its region leaves it to the next row of that capacity
    fresh = PartnerRows()
    for j in range(9):
        fresh.add(1, j, 1.0)  # 8 -> 16: the first region is left
    end = fresh._end
    fresh.touch(2)
    assert (
        fresh._at[2] == 0 and fresh._end == end and fresh.as_dict(1) == dict.fromkeys(range(9), 1.0)
    )
