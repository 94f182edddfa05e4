"""Compiled kernels (numba) for the relation block of a ranking: co-occurrence rows, their
blend with the lookup's rows, and the scratch slots the per-target sums both relation
signals make of them use (those sums are ``stream.domain.relation_sums``' kernels, re-exported
here and warmed up with these).

Why compiled: the block was ~400 µs of a ~1,500 µs ranking on the quick bench (one worker,
real timings per call) and grows with the query set, yet the arrays are small (a few thousand
entries): nearly all of it was the fixed cost of ~60 numpy calls and the Python between them,
not arithmetic. Each kernel here is one call over the same arrays. Rows are read where they are
kept, not concatenated first: ``gather_rows`` copies a query set's co-occurrence rows out of
``PartnerRows``' arena, and ``merge_at`` reads the lookup's cached rows in place (a list of
views and two ``np.concatenate`` per source cost ~35 µs of a ~95 µs read on the full bench).

Exactness: every kernel makes the same float operations in the same order as the numpy code it
replaced (kept as references in ``tests/unit/test_relation_kernels.py``, which compares them;
``relation_rows.top_k_per_row`` still decides ties), so results are bit-identical:
products and quotients are IEEE operations either way, a sum per target accumulates in entry
order from 0.0 as ``np.bincount`` does, and LLVM contracts ``a * b + c`` into a fused
multiply-add only under fastmath, which is off. ``np.minimum``'s NaN propagation is mirrored.

Kernels are compiled on first use and cached on disk next to this module (``cache=True``), so
only the first process after an install pays the compile (~6 s); ``warm_up`` lets a worker
pay even that before its first event. No kernel checks bounds at run time (numba does not), so
each one takes only indexes its caller has checked: ``slots`` must be longer than the largest
target, and every target must be >= 0 (``scratch_slots``); ``merge_at`` (and
``relation_sums``' ``recency_sums``, ``weighted_sums_at``) check their targets themselves (a
pass over them is cheaper than the ``max``/``min`` calls it saves) and refuse.
"""

from __future__ import annotations

import threading
import time

import numba
import numpy as np

from stream.domain.relation_sums import (
    recency_sums,
    relation_sums,
    weighted_sums,
    weighted_sums_at,
)


@numba.njit(cache=True, nogil=True)
def cooc_rows(
    keys: np.ndarray,
    pair: np.ndarray,
    lens: np.ndarray,
    mine: np.ndarray,
    count_of: np.ndarray,
    tie: np.ndarray,
    k: int,
    cap: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Rows of ``lens`` entries (partners ``keys`` of query item ``mine[row]`` with counts
    ``pair``): strength ``pair / sqrt(count_i · max(count_j, 1)) + tie`` (``tie`` per entry, or
    empty), the ``k`` strongest of each row, capped at 1 when ``cap``. Returns (targets,
    strengths, row_of, ok); not ``ok`` when a row longer than ``k`` ties (or holds a NaN) at its
    k-th strongest: which of the tied entries stay is then ``top_k_per_row``'s pick."""
    n = keys.size
    strength = np.empty(n)
    keep = np.ones(n, dtype=np.bool_)
    with_tie = tie.size == n and n > 0
    width = 0
    for r in range(lens.size):
        width = max(width, lens[r])
    buf = np.empty(width)
    kept = 0
    start = 0
    for r in range(lens.size):
        # per entry the operations of the numpy form, in its order: count_i · max(count_j, 1),
        # its square root, pair over that, plus the tie-break
        m = lens[r]
        count_i = count_of[mine[r]]
        nan = False
        for j in range(start, start + m):
            count_j = count_of[keys[j]]
            s = pair[j] / np.sqrt(
                count_i * (count_j if (count_j >= 1.0 or count_j != count_j) else 1.0)
            )
            s = s + tie[j] if with_tie else s
            strength[j] = s
            nan |= s != s
        if m > k:
            if nan:  # NaN orders apart in a partition: numpy's pick
                none = np.empty(0, dtype=np.int64)
                return none, np.empty(0), none, False
            buf[:m] = strength[start : start + m]
            kth = _select(buf, m, m - k)  # np.partition(row, m - k)[m - k]
            above = 0
            for j in range(start, start + m):
                keep[j] = strength[j] >= kth
                if keep[j]:
                    above += 1
            if above != k:
                none = np.empty(0, dtype=np.int64)
                return none, np.empty(0), none, False
            kept += k
        else:
            kept += m
        start += m
    out_t = np.empty(kept, dtype=np.int64)
    out_s = np.empty(kept)
    out_r = np.empty(kept, dtype=np.int64)
    o = 0
    start = 0
    for r in range(lens.size):
        for j in range(start, start + lens[r]):
            if keep[j]:
                s = strength[j]
                out_t[o] = keys[j]
                out_s[o] = 1.0 if (cap and s > 1.0) else s
                out_r[o] = r
                o += 1
        start += lens[r]
    return out_t, out_s, out_r, True


@numba.njit(cache=True, nogil=True)
def _select(buf: np.ndarray, m: int, i: int) -> float:
    """The ``i``-th smallest of ``buf[:m]`` (no NaN), reordering it: quickselect (Hoare's
    partition around a median of three); with a sort per row instead, ``cooc_rows`` took 33
    rather than 22 µs on 20 rows of 100."""
    lo, hi = 0, m - 1
    while lo < hi:
        a, b, c = buf[lo], buf[(lo + hi) // 2], buf[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        left, right = lo, hi
        while left <= right:
            while buf[left] < pivot:
                left += 1
            while buf[right] > pivot:
                right -= 1
            if left <= right:
                buf[left], buf[right] = buf[right], buf[left]
                left += 1
                right -= 1
        if i <= right:
            hi = right
        elif i >= left:
            lo = left
        else:
            return float(buf[i])
    return float(buf[lo])


@numba.njit(cache=True, nogil=True)
def gather_rows(
    keys: np.ndarray, vals: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """``keys[starts[r]:starts[r] + sizes[r]]`` (and ``vals``) of every row ``r``, concatenated
    (``partner_rows.PartnerRows.gather``), and the largest key (the smallest int64 if none)."""
    total = 0
    for r in range(sizes.size):
        total += sizes[r]
    out_k = np.empty(total, dtype=np.int64)
    out_v = np.empty(total)
    o = 0
    for r in range(sizes.size):
        at, n = starts[r], sizes[r]
        out_k[o : o + n] = keys[at : at + n]
        out_v[o : o + n] = vals[at : at + n]
        o += n
    top = np.iinfo(np.int64).min
    for j in range(total):
        top = max(top, out_k[j])
    return out_k, out_v, top


@numba.njit(cache=True, nogil=True)
def merge_rows(
    lt: np.ndarray,
    ls: np.ndarray,
    lr: np.ndarray,
    ct: np.ndarray,
    cs: np.ndarray,
    cr: np.ndarray,
    n_queries: int,
    wl: float,
    wc: float,
    slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``merge_at`` with the lookup's rows given flat as ``Rows`` (``lr`` ascending)."""
    at = np.zeros(n_queries, dtype=np.int64)
    size = np.zeros(n_queries, dtype=np.int64)
    for j in range(lr.size):
        size[lr[j]] += 1
    for q in range(1, n_queries):
        at[q] = at[q - 1] + size[q - 1]
    rows = np.arange(n_queries)
    out_t, out_s, out_r, _ = merge_at(lt, ls, at, size, rows, ct, cs, cr, wl, wc, slots)
    return out_t, out_s, out_r


@numba.njit(cache=True, nogil=True)
def merge_at(
    lt: np.ndarray,
    ls: np.ndarray,
    at: np.ndarray,
    size: np.ndarray,
    rows: np.ndarray,
    ct: np.ndarray,
    cs: np.ndarray,
    cr: np.ndarray,
    wl: float,
    wc: float,
    slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``BlendedRelations._merge_rows``: per query ``q``, the lookup's row is
    ``lt[a:a + n]``/``ls[a:a + n]`` (``a, n = at[rows[q]], size[rows[q]]``: rows where the
    lookup's cache keeps them, nothing concatenated) and the co-occurrence row the entries of
    ``cr == q`` (``cr`` ascending). A row only one source has as it is; a row both have as the
    lookup's entries with ``min(1, (w_l·s_l + w_c·s_c) / (w_l + w_c))`` (s_c 0.0 when the
    co-occurrence row lacks the target), then the co-occurrence entries the lookup row lacks
    with ``min(1, w_c·s_c / (w_l + w_c))``. Targets unique in a row; ``slots`` all -1 (left
    so). Not ``ok`` (and nothing done) when a target is negative or ``slots`` too short."""
    total = ct.size
    for q in range(rows.size):
        a = at[rows[q]]
        total += size[rows[q]]
        for j in range(a, a + size[rows[q]]):
            if lt[j] < 0 or lt[j] >= slots.size:
                none = np.empty(0, dtype=np.int64)
                return none, np.empty(0), none, False
    for j in range(ct.size):
        if ct[j] < 0 or ct[j] >= slots.size:
            none = np.empty(0, dtype=np.int64)
            return none, np.empty(0), none, False
    out_t = np.empty(total, dtype=np.int64)
    out_s = np.empty(total)
    out_r = np.empty(total, dtype=np.int64)
    width = 0
    for q in range(rows.size):
        width = max(width, size[rows[q]])
    co_part = np.empty(width)
    found = np.zeros(ct.size, dtype=np.bool_)
    wsum = wl + wc
    ci = o = 0
    for q in range(rows.size):
        la = at[rows[q]]
        li = la + size[rows[q]]
        ca = ci
        while ci < ct.size and cr[ci] == q:
            ci += 1
        both = la < li and ca < ci
        if both:
            for j in range(la, li):
                slots[lt[j]] = j - la
                co_part[j - la] = 0.0
            for j in range(ca, ci):
                pos = slots[ct[j]]
                if pos >= 0:
                    co_part[pos] = cs[j] * wc
                    found[j] = True
            for j in range(la, li):
                slots[lt[j]] = -1
        for j in range(la, li):
            s = (ls[j] * wl + co_part[j - la]) / wsum if both else ls[j]
            out_t[o] = lt[j]
            out_s[o] = 1.0 if (both and s > 1.0) else s
            out_r[o] = q
            o += 1
        for j in range(ca, ci):
            if found[j]:
                continue  # summed into the lookup entry of its row
            s = cs[j] * wc / wsum if both else cs[j]
            out_t[o] = ct[j]
            out_s[o] = 1.0 if (both and s > 1.0) else s
            out_r[o] = q
            o += 1
    return out_t[:o], out_s[:o], out_r[:o], True


class _Scratch(threading.local):
    slots: np.ndarray = np.full(0, -1, dtype=np.int32)


_scratch = _Scratch()


def scratch_slots(targets: np.ndarray, more: np.ndarray | None = None) -> np.ndarray:
    """A per-thread int32 array of -1 longer than every target of ``targets`` (and ``more``),
    as kernels leave it (4 bytes an item of the catalog: 160 MB at 40M items, beside the
    catalog's own per-item arrays); ValueError on a negative target, which no kernel could
    index."""
    top = int(targets.max()) if targets.size else -1
    low = int(targets.min()) if targets.size else 0
    if more is not None and more.size:
        top, low = max(top, int(more.max())), min(low, int(more.min()))
    if low < 0:
        raise ValueError(f"relation target {low} is not an item index")
    if top >= _scratch.slots.size:
        _scratch.slots = np.full(max(top + 1, 2 * _scratch.slots.size, 1024), -1, np.int32)
    return _scratch.slots


def current_slots() -> np.ndarray:
    """This thread's slots as they are (all -1), for a kernel that checks its own bounds."""
    return _scratch.slots


def warm_up() -> float:
    """Compile (or load from the cache) every kernel with the types ranking passes; returns
    the seconds it took."""
    started = time.perf_counter()
    i = np.zeros(2, dtype=np.int64)
    f = np.ones(2)
    slots = scratch_slots(i)
    cooc_rows(i, f, np.array([2], dtype=np.int64), i[:1], f, f[:0], 1, True)
    merge_rows(i, f, i, i, f, i, 1, 1.0, 1.0, slots)
    merge_at(i, f, i, i, i[:1], i, f, i, 1.0, 1.0, slots)
    gather_rows(i, f, i, i)
    relation_sums(i, f, i, 2, f, f, slots)
    recency_sums(i, f, i, f, np.zeros(2, dtype=np.bool_), 1.0, (1.0, 1.0), 1.0, 2, 2, slots)
    weighted_sums(i, f, i, 2, f, slots)
    weighted_sums_at(i, f, i, f, slots)
    return time.perf_counter() - started
