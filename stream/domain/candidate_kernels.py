"""The candidate block of a ranking in one compiled pass (numba): the pooled candidate indexes
made unique and filtered, and the signal columns that are only gathers and lookups filled.

What the block does (``candidate_block_numpy`` is its specification, the code it replaced):

1. sort the pooled indexes and drop repeats (the kernel walks bitmaps over the catalog
   instead, which gives the same order: ``candidate_parts``);
2. keep the eligible ones (in stock, not deleted), those carrying the feed's flag (deals, new)
   when it has one, and none that is banned; mark the kept ones the user only viewed (``seen``);
3. fill, per kept candidate: the session and long-term affinity (the sum of its features'
   weights over the vector's scale; a weight is found in a hash table of the user's feature
   ids, 0 when absent, so no array is as large as the feature vocabulary), both
   relation horizons and the recent relation (looked up in their sorted targets, each column
   over ``max(1e-9, its max)`` when any entry is not 0), and the repeat and view-return
   scores (sparse, looked up).

Why compiled: in numpy that is ~25 calls over a few hundred candidates, ~17 % of an in-process
burst on the full bench workload (py-spy by line): call overhead, not arithmetic. The other
columns (popularity, trending, query and filter match, price fit, freshness) stay in numpy.
Inside the kernel, sorting the pool was half its time: bitmaps and sums without scratch arrays
(``candidate_parts``) took it from ~76 to ~34 µs a ranking (6,000 captured blocks).

Exactness: the kernel makes the numpy code's float operations in its order, so results are
bit-identical (``tests/unit/test_candidate_kernels.py`` compares them on random and bench
inputs). The one sum, a row of feature weights, is numpy's pairwise summation for a row of
8-128 values (eight running sums, combined in pairs, then the rest one by one; fewer than 8
are added one by one); quotients are IEEE either way. Indexes are checked, since numba does
not: one out of range (or a row longer than 128) makes the kernel report failure, and the
caller runs the numpy code, which raises where numpy indexing would. (Feature ids are looked
up, not indexed: any id reads as 0 unless the user has a weight for it.)
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numba
import numpy as np

from stream.domain.affinity import FeatureWeights
from stream.domain.candidate_parts import (
    BITS_PER_POOLED,
    id_table,
    kept_by_bits,
    kept_by_sorting,
    merge_into,
    pairwise_sum,
    position,
    scaled,
    sparse_into,
)
from stream.domain.sorted_sets import members, sorted_unique

#: the widest feature row the kernel sums as numpy does (numpy's pairwise block size)
_PW_BLOCK = 128


class Block(NamedTuple):
    """What the candidate block reads.

    ``flags``: the feed's flag per item (deals, new), None for a feed without one;
    ``affinity``: the user's feature ids (sorted), their session and long-term weights and the
    two scales (``Affinity``: an id not listed weighs 0); ``relation``: sorted targets with
    short and long sums, then the recent relation's sorted targets and values; ``sparse``:
    repeat keys and values, view keys and values (any order, unique); ``cols``: the columns of
    session, long, relation, relation_long, recent, repeat, view (distinct)."""

    pooled: np.ndarray
    available: np.ndarray
    deleted: np.ndarray
    flags: np.ndarray | None
    banned: np.ndarray
    seen_keys: np.ndarray
    feature_ids: np.ndarray
    affinity: tuple[np.ndarray, np.ndarray, np.ndarray, float, float]
    relation: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    sparse: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    cols: np.ndarray
    n_signals: int


def candidate_block_numpy(b: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The specification: ``(cands, values, seen)``; only the block's columns are filled."""
    ids, session, long_term, s_scale, l_scale = b.affinity
    rel_keys, rel_short, rel_long, recent_keys, recent_vals = b.relation
    available, deleted, flags, cols = b.available, b.deleted, b.flags, b.cols
    cands = sorted_unique(b.pooled)
    keep = (available[cands] > 0) & ~deleted[cands]
    if flags is not None:
        keep &= flags[cands]
    if b.banned.size:
        keep &= ~members(cands, b.banned)
    cands = cands[keep]
    seen = members(cands, b.seen_keys)
    values = np.zeros((cands.size, b.n_signals), dtype=np.float64)
    if cands.size:
        feat = b.feature_ids[cands].astype(np.intp)
        values[:, cols[0]] = FeatureWeights(ids, session)[feat].sum(axis=1) / s_scale
        values[:, cols[1]] = FeatureWeights(ids, long_term)[feat].sum(axis=1) / l_scale
        both = lookup_sorted(rel_keys, np.column_stack([rel_short, rel_long]), cands)
        for col, rel in ((cols[2], both[:, 0]), (cols[3], both[:, 1])):
            values[:, col] = rel / max(1e-9, float(rel.max())) if rel.any() else rel
        rel = lookup_sorted(recent_keys, recent_vals, cands)
        values[:, cols[4]] = rel / max(1e-9, float(rel.max())) if rel.any() else rel
        for col, (keys, vals) in ((cols[5], b.sparse[:2]), (cols[6], b.sparse[2:])):
            pos = np.searchsorted(cands, keys)
            hit = (pos < cands.size) & (cands[np.minimum(pos, cands.size - 1)] == keys)
            values[pos[hit], col] = vals[hit]
    return cands, values, seen


def lookup_sorted(keys: np.ndarray, values: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """Values of sorted candidate indexes from sorted ``keys`` (both sorted, unique); rows of
    ``values`` may hold several columns, read with one search."""
    out = np.zeros((cands.size, *values.shape[1:]), dtype=np.float64)
    if keys.size and cands.size:
        pos = np.searchsorted(cands, keys)
        hit = (pos < cands.size) & (cands[np.minimum(pos, cands.size - 1)] == keys)
        out[pos[hit]] = values[hit]
    return out


@numba.njit(cache=True, nogil=True)
def _failed(n_signals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The kernel's "an index was out of range" answer (built only then, not per call)."""
    return np.zeros(0, np.int64), np.zeros((0, n_signals)), np.zeros(0, np.bool_), False


@numba.njit(cache=True, nogil=True)
def candidate_block_kernel(
    pooled: np.ndarray,
    available: np.ndarray,
    deleted: np.ndarray,
    flags: np.ndarray,
    use_flags: bool,
    banned: np.ndarray,
    seen_keys: np.ndarray,
    feature_ids: np.ndarray,
    aff_ids: np.ndarray,
    session: np.ndarray,
    long_term: np.ndarray,
    s_scale: float,
    l_scale: float,
    rel_keys: np.ndarray,
    rel_short: np.ndarray,
    rel_long: np.ndarray,
    recent_keys: np.ndarray,
    recent_vals: np.ndarray,
    rep_keys: np.ndarray,
    rep_vals: np.ndarray,
    view_keys: np.ndarray,
    view_vals: np.ndarray,
    cols: np.ndarray,
    n_signals: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``candidate_block_numpy`` in one pass; the last value is False when an index was out
    of range (then nothing else is meaningful)."""
    cap = min(available.size, deleted.size, feature_ids.shape[0])
    if use_flags:
        cap = min(cap, flags.size)
    if feature_ids.shape[1] > _PW_BLOCK:
        return _failed(n_signals)
    for i in range(pooled.size):
        if pooled[i] < 0 or pooled[i] >= cap:
            return _failed(n_signals)
    if cap <= BITS_PER_POOLED * pooled.size:
        cands, seen = kept_by_bits(
            pooled, available, deleted, flags, use_flags, banned, seen_keys, cap
        )
    else:
        cands, seen = kept_by_sorting(
            pooled, available, deleted, flags, use_flags, banned, seen_keys
        )
    m = cands.size
    values = np.zeros((m, n_signals))
    if m == 0:
        return cands, values, seen, True
    width = feature_ids.shape[1]
    s_row = np.empty(width)
    l_row = np.empty(width)
    table, slot, mask = id_table(aff_ids)
    for i in range(m):
        row = feature_ids[cands[i]]
        hits = False
        for j in range(width):
            p = position(table, slot, mask, row[j])
            if p >= 0:
                s_row[j] = session[p]
                l_row[j] = long_term[p]
                hits = True
            else:
                s_row[j] = 0.0
                l_row[j] = 0.0
        s_sum = pairwise_sum(s_row, width) if hits else 0.0
        l_sum = pairwise_sum(l_row, width) if hits else 0.0
        values[i, cols[0]] = s_sum / s_scale
        values[i, cols[1]] = l_sum / l_scale
    merge_into(rel_keys, rel_short, cands, values, cols[2])
    merge_into(rel_keys, rel_long, cands, values, cols[3])
    merge_into(recent_keys, recent_vals, cands, values, cols[4])
    for col in cols[2:5]:
        scaled(values, col)
    sparse_into(rep_keys, rep_vals, cands, values, cols[5])
    sparse_into(view_keys, view_vals, cands, values, cols[6])
    return cands, values, seen, True


_NO_FLAGS = np.zeros(0, dtype=np.bool_)


def candidate_block(b: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``candidate_block_numpy``'s result, compiled; the numpy code when an index is out of
    range (it raises as numpy indexing does, or gives numpy's answer)."""
    got = candidate_block_kernel(
        b.pooled,
        b.available,
        b.deleted,
        _NO_FLAGS if b.flags is None else b.flags,
        b.flags is not None,
        b.banned,
        b.seen_keys,
        b.feature_ids,
        *b.affinity,
        *b.relation,
        *b.sparse,
        b.cols,
        b.n_signals,
    )
    if got[3]:
        return got[0], got[1], got[2]
    return candidate_block_numpy(b)


def warm_up() -> float:
    """Compile (or load from the cache) the kernel with the types ranking passes; returns the
    seconds it took."""
    started = time.perf_counter()
    i = np.zeros(2, dtype=np.int64)
    f = np.ones(2)
    block = Block(
        i, np.ones(2, dtype=np.int64), np.zeros(2, dtype=np.bool_), None, i[:0], i[:0],
        np.zeros((2, 12), dtype=np.int32), (i, f, f, 1.0, 1.0), (i, f, f, i, f),
        (i[:0], f[:0], i[:0], f[:0]), np.arange(7, dtype=np.int64), 14,
    )  # fmt: skip
    candidate_block(block)
    return time.perf_counter() - started
