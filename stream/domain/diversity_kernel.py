"""Compiled (numba) capped selection: a feed's list at λ = 1 in one call.

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


def warm_up() -> float:
    """Compile (or load from the cache) the kernel with the types ranking passes; returns the
    seconds it took."""
    started = time.perf_counter()
    ones = np.ones(2, dtype=np.bool_)
    groups = np.ones((1, 2), dtype=np.int64)
    capped_top(np.ones(2), ones, groups, np.ones(1, dtype=np.int64), ones, 1, 2)
    return time.perf_counter() - started
