"""Compiled (numba) capped selection: a feed's list at λ = 1 in one call (``capped_top``;
``seen_last`` with the seen items after it), and the liked features its reasons name
(``liked_order``: a list's rows in one call, see ``reasons.liked_rows``).

Why compiled: selecting a list (order the allowed candidates by score, walk them skipping
items whose category or brand is full, fill a short list from the skipped ones) was ~75 µs
of a ~1,000 µs ranking on the quick bench: a partition, a sort, four gathers and a Python walk
over a few dozen items, for a list of 20. Here the candidates come out of a heap in score
order only as far as the walk goes.

Exactness: the order is ``np.argsort(-score, kind="stable")`` over the allowed positions (score
descending, ties by position, NaN last), the walk is ``diversity._walk`` over its first
``head`` items, and the fill is ``_capped_in_order``'s; ``tests/unit/test_diversity_kernel.py``
compares them. The one place they may differ is not defined on the Python side either: which
of several items tied at the ``head``-th score ``np.argpartition`` keeps. The kernel keeps the
lowest positions.
"""

from __future__ import annotations

import heapq
import time

import numba
import numpy as np

from stream.domain.catalog import PAD


@numba.njit(cache=True, nogil=True)
def capped_top(
    score: np.ndarray,
    allowed: np.ndarray,
    groups: np.ndarray,
    limits: np.ndarray,
    exempt: np.ndarray,
    size: int,
    head: int,
) -> np.ndarray:
    """Positions of the list: the ``allowed`` candidates by ``score`` (descending; ties by
    position), at most the first ``head`` of them walked; one is taken unless, for a row r of
    ``groups`` (a grouping: one group id per candidate, PAD = none), ``limits[r]`` taken items
    that are not ``exempt`` already share its group; exempt items are never capped nor counted.
    A list left short is filled with the skipped items, in score order."""
    n = score.size
    if groups.shape[1] != n or allowed.size != n or exempt.size != n:
        raise IndexError("groups, allowed and exempt need one entry per candidate")
    heap = [(0, 0.0, 0)]  # (NaN last, -score, position): argsort's stable order
    heap.pop()
    for p in range(n):
        if allowed[p]:
            s = score[p]
            heap.append((1, 0.0, p) if s != s else (0, -s, p))
    heapq.heapify(heap)
    walk = min(len(heap), head)
    chosen = np.empty(size, dtype=np.int64)
    counted = np.empty(size, dtype=np.int64)  # the chosen items that count against the caps
    overflow = np.empty(walk, dtype=np.int64)
    taken = capped = skipped = 0
    for _ in range(walk):
        if taken >= size:
            break
        p = heapq.heappop(heap)[2]
        if not exempt[p]:
            full = False
            for r in range(limits.size):
                g = groups[r, p]
                if g == PAD:
                    continue
                same = 0
                for j in range(capped):
                    if groups[r, counted[j]] == g:
                        same += 1
                if same >= limits[r]:
                    full = True
                    break
            if full:
                overflow[skipped] = p
                skipped += 1
                continue
            counted[capped] = p
            capped += 1
        chosen[taken] = p
        taken += 1
    fill = min(size - taken, skipped)
    out = np.empty(taken + fill, dtype=np.int64)
    out[:taken] = chosen[:taken]
    out[taken:] = overflow[:fill]
    return out


@numba.njit(cache=True, nogil=True)
def seen_last(
    score: np.ndarray,
    keep: np.ndarray,
    seen: np.ndarray,
    groups: np.ndarray,
    limits: np.ndarray,
    exempt: np.ndarray,
    size: int,
    tail: int,
    per_slot: int,
    floor: int,
) -> np.ndarray:
    """A list whose seen items come last: ``capped_top`` of the unseen ``keep`` items, with
    room left for up to ``tail`` seen ones (as many as there are) and a head of
    ``max(per_slot × its size, floor)``; then the seen ``keep`` items by score, uncapped, fill
    the rest. One call for what took two masks, a count, ``capped_top`` and a stable argsort
    of the seen (~10 numpy calls of ~1 µs on a few hundred candidates)."""
    n = score.size
    fresh = np.empty(n, dtype=np.bool_)
    old = np.empty(n, dtype=np.bool_)
    count = 0
    for p in range(n):
        fresh[p] = keep[p] and not seen[p]
        old[p] = keep[p] and seen[p]
        count += old[p]
    k = size - min(count, tail)
    first = np.empty(0, dtype=np.int64)
    if k > 0:
        first = capped_top(score, fresh, groups, limits, exempt, k, max(per_slot * k, floor))
    left = size - first.size
    if left <= 0:
        return first
    # no cap rows: the seen in score order (ties by position, NaN last), as argsort gives
    rest = capped_top(score, old, groups[:0], limits[:0], exempt, left, left)
    out = np.empty(first.size + rest.size, dtype=np.int64)
    out[: first.size] = first
    out[first.size :] = rest
    return out


@numba.njit(cache=True, nogil=True)
def liked_order(
    feats: np.ndarray, ids: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``feats`` (items × feature ids): its ids whose weight is > 0, heaviest
    first, ties in row order (a stable sort), as ``order[r, :counts[r]]``. An id's weight is
    ``values`` at its place in the sorted ``ids`` (the first, if repeated), 0 when absent:
    what ``FeatureWeights`` reads."""
    rows, width = feats.shape
    order = np.empty((rows, width), dtype=np.int64)
    counts = np.zeros(rows, dtype=np.int64)
    weights = np.empty(width, dtype=np.float64)
    m = ids.size
    for r in range(rows):
        taken = 0
        for c in range(width):
            f = feats[r, c]
            lo, hi = 0, m  # leftmost ids[lo] >= f, as np.searchsorted
            while lo < hi:
                mid = (lo + hi) >> 1
                if ids[mid] < f:
                    lo = mid + 1
                else:
                    hi = mid
            if lo == m or ids[lo] != f or not values[lo] > 0:
                continue
            w = values[lo]
            j = taken  # insertion: pass only lighter ones, so an equal weight stays before
            while j > 0 and weights[j - 1] < w:
                weights[j] = weights[j - 1]
                order[r, j] = order[r, j - 1]
                j -= 1
            weights[j] = w
            order[r, j] = f
            taken += 1
        counts[r] = taken
    return order, counts


def warm_up() -> float:
    """Compile (or load from the cache) the kernel with the types ranking passes; returns the
    seconds it took."""
    started = time.perf_counter()
    ones = np.ones(2, dtype=np.bool_)
    groups = np.ones((1, 2), dtype=np.int64)
    capped_top(np.ones(2), ones, groups, np.ones(1, dtype=np.int64), ones, 1, 2)
    seen_last(np.ones(2), ones, ones, groups, np.ones(1, dtype=np.int64), ones, 1, 1, 4, 2)
    # feature ids as the catalog stores them (int32), weights as the affinity keeps them
    liked_order(np.ones((1, 2), dtype=np.int32), np.ones(1, dtype=np.int64), np.ones(1))
    return time.perf_counter() - started
