"""The compiled relation kernels give, bit for bit, what the numpy code they replaced gave.

Each reference below is that numpy code as it was (the co-occurrence rows of
``CoOccurrence._rows``, the per-target sums of ``signals.relation_scores`` and
``recent_relation.recent_from_rows`` over the shared grouping). The merge of both sources is
compared with ``BlendedRelations._merge`` in ``test_blended_relations``, and whole rankings
with the pre-change ranking in ``test_fast_rank``.
"""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain import relation_kernels as kernels
from stream.domain.blended import BlendedRelations
from stream.domain.relation_rows import top_k_per_row
from stream.domain.relations import CoOccurrence


def _rows(rng: np.random.Generator, n_rows: int, width: int, items: int) -> tuple:
    """Rows of distinct targets (rows ascending), as ranking reads them."""
    lens = rng.integers(0, width + 1, size=n_rows)
    parts = [rng.choice(items, size=n, replace=False) for n in lens]
    targets = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), lens)
    return targets, row_of, lens.astype(np.int64)


def _cooc_reference(keys, pair, lens, mine, count_of, tie, k, cap):  # type: ignore[no-untyped-def]
    row_of = np.repeat(np.arange(lens.size, dtype=np.int64), lens)
    strength = pair / np.sqrt(count_of[mine][row_of] * np.maximum(count_of[keys], 1.0))
    if tie.size:
        strength = strength + tie
    keep = top_k_per_row(strength, lens, k)
    if keep is not None:
        keys, strength, row_of = keys[keep], strength[keep], row_of[keep]
    return keys, np.minimum(1.0, strength) if cap else strength, row_of


@pytest.mark.parametrize("seed", range(12))
def test_cooccurrence_rows_are_the_numpy_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items, k = 400, 7
    keys, _, lens = _rows(rng, int(rng.integers(1, 30)), 25, items)
    mine = rng.integers(0, items, size=lens.size).astype(np.int64)
    pair = rng.integers(1, 9, size=keys.size) * rng.choice([0.5, 1.0, 2.0, -0.5], size=keys.size)
    count_of = rng.integers(1, 20, size=items).astype(np.float64) * 0.5  # some below 1
    tie = rng.random(keys.size) * 1e-9 if seed % 3 else np.zeros(0)
    for cap in (True, False):
        *got, ok = kernels.cooc_rows(keys, pair, lens, mine, count_of, tie, k, cap)
        want = _cooc_reference(keys, pair, lens, mine, count_of, tie, k, cap)
        if not ok:  # a tie at some row's k-th strongest: only without a tie-break
            assert not tie.size
            continue
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_a_tie_at_the_kth_strongest_is_left_to_the_numpy_pick() -> None:
    keys = np.arange(5, dtype=np.int64)
    pair = np.array([3.0, 2.0, 2.0, 2.0, 1.0])  # k = 2: the 2nd strongest ties three ways
    lens, mine, count_of = np.array([5]), np.array([9]), np.ones(10)
    assert kernels.cooc_rows(keys, pair, lens, mine, count_of, np.zeros(0), 2, True)[3] is False
    cooc = CoOccurrence(top_k=2)  # and the object still answers, through that pick
    cooc.restore({9: 1.0}, {9: dict(zip(keys.tolist(), pair.tolist(), strict=True))})
    targets, strengths, _ = cooc.related_many([(9, "view")])
    assert targets.size == 2 and 0 in targets.tolist() and strengths.max() == 1.0


def _sums_reference(targets, strengths, row_of, recency, long_recency):  # type: ignore[no-untyped-def]
    """``relation_scores`` before the kernel, over one grouping of these entries."""
    short = strengths * recency[row_of]
    long = strengths * long_recency[row_of]
    keep = (short > 0) | (long > 0)
    uniq, inv = np.unique(targets, return_inverse=True)
    order = np.argsort(targets, kind="stable")
    ordered_t = targets[order]
    head = np.ones(order.size, dtype=bool)
    head[1:] = ordered_t[1:] != ordered_t[:-1]
    group = np.cumsum(head) - 1
    n = uniq.size
    has = np.bincount(inv, weights=keep, minlength=n) > 0
    short_sum = np.bincount(inv, weights=short, minlength=n)[has]
    long_sum = np.bincount(inv, weights=long, minlength=n)[has]
    share = np.where(keep, short + 1e-12 * long, -np.inf)[order]
    top = share == np.maximum.reduceat(share, np.flatnonzero(head))[group]
    at = np.flatnonzero(top)
    first = np.ones(at.size, dtype=bool)
    first[1:] = group[at][1:] != group[at][:-1]
    best = row_of[order[at[first]][has]]
    return uniq[has], short_sum, long_sum, best


@pytest.mark.parametrize("seed", range(12))
def test_relation_sums_are_the_grouped_numpy_sums(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    targets, row_of, lens = _rows(rng, int(rng.integers(1, 40)), 30, 120)
    # strengths with exact ties (contributions compare equal) and a few negative entries
    strengths = rng.choice([0.25, 0.5, 1.0, 0.125, -0.25], size=targets.size)
    recency = rng.choice([0.0, 0.5, 1.0], size=lens.size)
    long_recency = rng.choice([0.0, 0.25, 1.0], size=lens.size)
    for end in sorted({0, targets.size // 3, targets.size}):
        t, s, r = targets[:end], strengths[:end], row_of[:end]
        slots = kernels.scratch_slots(t)
        got = kernels.relation_sums(t, s, r, end, recency, long_recency, slots)
        want = _sums_reference(t, s, r, recency, long_recency)
        for a, b in zip(got, want, strict=True):
            assert a.tobytes() == b.astype(a.dtype).tobytes()
        assert (slots == -1).all()  # left as found, for the next call


@pytest.mark.parametrize("seed", range(8))
def test_weighted_sums_are_bincount_sums_in_entry_order(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    targets, row_of, lens = _rows(rng, int(rng.integers(1, 40)), 30, 90)
    strengths, weights = rng.random(targets.size), rng.random(lens.size) * 0.8**seed
    slots = kernels.scratch_slots(targets)
    uniq_got, sums_got = kernels.weighted_sums(
        targets, strengths, row_of, targets.size, weights, slots
    )
    uniq, inv = np.unique(targets, return_inverse=True)
    sums = np.bincount(inv, weights=strengths * weights[row_of], minlength=uniq.size)
    assert uniq_got.tolist() == uniq.tolist()
    assert sums_got.tobytes() == sums.tobytes()
    assert (slots == -1).all()


@pytest.mark.parametrize("seed", range(8))
def test_merged_rows_keep_one_source_rows_and_sum_shared_targets(seed: int) -> None:
    """Against ``_merge`` (the union-and-group merge ``related`` uses), row by row."""
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(1, 25))
    lt, lr, _ = _rows(rng, n, 12, 60)
    ct, cr, _ = _rows(rng, n, 12, 60)
    ls, cs = rng.random(lt.size), rng.random(ct.size) * 2.0  # some above 1: the cap
    blend = BlendedRelations(CoOccurrence(), None, lookup_weight=0.7, cooccurrence_weight=1.3)
    got = blend._merge_rows((lt, ls, lr), (ct, cs, cr), n)
    want = blend._merge((lt, ls, lr), (ct, cs, cr), n)
    assert got[2].tolist() == sorted(got[2].tolist())  # rows in query order
    for q in range(n):
        mine = {t: s for t, s, r in zip(*got, strict=True) if r == q}
        theirs = {t: s for t, s, r in zip(*want, strict=True) if r == q}
        assert mine == theirs


@pytest.mark.parametrize("seed", range(6))
def test_gathered_rows_are_the_concatenated_slices(seed: int) -> None:
    """``gather_rows`` (``PartnerRows``' read) against the views and ``np.concatenate`` it
    replaced: rows anywhere in the arena, repeated, empty, or none at all."""
    rng = np.random.default_rng(500 + seed)
    keys, vals = rng.integers(0, 10**6, size=3_000), rng.random(3_000)
    n = int(rng.integers(0, 30))
    sizes = rng.integers(0, 200, size=n).astype(np.int64) * (rng.random(n) < 0.8)
    starts = np.array([int(rng.integers(0, 3_000 - m + 1)) for m in sizes], dtype=np.int64)
    got_k, got_v, top = kernels.gather_rows(keys, vals, starts, sizes)
    want_k = np.concatenate([keys[a : a + m] for a, m in zip(starts, sizes, strict=True)] + [[]])
    want_v = np.concatenate([vals[a : a + m] for a, m in zip(starts, sizes, strict=True)] + [[]])
    assert got_k.tobytes() == want_k.astype(np.int64).tobytes()
    assert got_v.tobytes() == want_v.tobytes()
    assert top == (int(want_k.max()) if want_k.size else np.iinfo(np.int64).min)


@pytest.mark.parametrize("seed", range(8))
def test_merge_at_reads_kept_rows_as_merge_rows_reads_them_concatenated(seed: int) -> None:
    """The lookup's rows read where they are kept (any order, some read twice) merge to what
    the concatenated rows merge to, entry for entry and float for float."""
    rng = np.random.default_rng(600 + seed)
    n = int(rng.integers(1, 25))
    lt, lr, lens = _rows(rng, n, 12, 60)
    ls = rng.random(lt.size)
    ct, cr, _ = _rows(rng, n, 12, 60)
    cs = rng.random(ct.size) * 2.0  # some above 1: the cap
    # the rows kept in another order, with a decoy row between them
    order = rng.permutation(n)
    kept_t, kept_s = [np.array([7, 8])], [np.array([0.5, 0.25])]
    at, size, end = np.zeros(n, np.int64), lens.copy(), 2
    starts = np.cumsum(lens) - lens
    for q in order:
        at[q] = end
        kept_t.append(lt[starts[q] : starts[q] + lens[q]])
        kept_s.append(ls[starts[q] : starts[q] + lens[q]])
        end += lens[q]
    kt, ks = np.concatenate(kept_t), np.concatenate(kept_s)
    slots = kernels.scratch_slots(lt, ct)
    want = kernels.merge_rows(lt, ls, lr, ct, cs, cr, n, 0.7, 1.3, slots)
    *got, ok = kernels.merge_at(kt, ks, at, size, np.arange(n), ct, cs, cr, 0.7, 1.3, slots)
    assert ok
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert (slots == -1).all()
    # slots too short for a target, or a negative target: refused, slots untouched
    short = np.full(int(max(lt.max(initial=0), ct.max(initial=0))), -1, dtype=np.int32)
    args = (kt, ks, at, size, np.arange(n), ct, cs, cr, 0.7, 1.3)
    if lt.size + ct.size:
        assert kernels.merge_at(*args, short)[3] is False and (short == -1).all()
    bad = kt.copy()
    bad[at[0]] = -1
    if size[0]:
        assert kernels.merge_at(bad, *args[1:], slots)[3] is False and (slots == -1).all()


def test_scratch_slots_refuse_a_negative_target_and_grow_for_large_ones() -> None:
    with pytest.raises(ValueError, match="not an item index"):
        kernels.scratch_slots(np.array([3, -1]))
    slots = kernels.scratch_slots(np.array([5]), np.array([70_000]))
    assert slots.size > 70_000 and (slots == -1).all()


def test_warm_up_compiles_every_kernel() -> None:
    assert kernels.warm_up() >= 0.0
    for kernel in (
        kernels.cooc_rows,
        kernels.gather_rows,
        kernels.merge_rows,
        kernels.merge_at,
        kernels.relation_sums,
        kernels.recency_sums,
        kernels.weighted_sums,
        kernels.weighted_sums_at,
    ):
        assert kernel.signatures  # compiled (or loaded from the cache)


@pytest.mark.parametrize("seed", range(6))
def test_select_is_the_partition_value(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    for m in (1, 2, 3, 7, 41, 100, 257):
        row = rng.choice([0.1, 0.2, 0.3], size=m) if seed % 2 else rng.random(m)
        for i in sorted({0, m // 3, m // 2, m - 1}):
            assert kernels._select(row.copy(), m, i) == np.partition(row, i)[i]
