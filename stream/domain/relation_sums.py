"""Compiled kernels (numba) of both relation signals: per target, the sums of a ranking's
relation rows weighted by each query's recency (``signals.relation_scores``) or by how many
events back it is (``recent_relation.recent_from_rows``).

Why compiled, and why whole: see ``relation_kernels`` (the rows these kernels read come from
there). Beyond the sums, ``recency_sums`` also computes each query's two recencies and
``weighted_sums_at`` checks its targets itself: per ranking, ``relation_scores``' Python loop
(two ``math.exp`` a query, up to 50 queries) and its ``np.asarray`` calls cost ~9 µs and a
``scratch_slots`` call (a ``max`` and a ``min`` over the targets) ~3.5 µs, each signal.

Exactness: sums accumulate per target in entry order from 0.0 (as ``np.bincount`` adds);
``math.exp`` compiles to the C library's ``exp``, the function CPython's ``math.exp`` calls
(numba's vector library, SVML, is not installed: no vectorised variant), so a recency has the
bits the Python loop gave it; ``tests/unit/test_relation_kernels.py`` compares both on many
ages, and each kernel with the numpy code it replaced. ``slots`` (all -1, longer than every
target: ``relation_kernels.scratch_slots``) map a target to its group during a call and are
all -1 again on return.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _groups(targets: np.ndarray, end: int, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first ``end`` entries grouped by target, groups in order of first appearance: per
    entry its group, per group its target. ``slots`` (all -1, longer than every target) map a
    target to its group, and keep doing so until ``_release``."""
    group_of = np.empty(end, dtype=np.int64)
    group_target = np.empty(end, dtype=np.int64)
    n = 0
    for e in range(end):
        t = targets[e]
        g = slots[t]
        if g < 0:
            g = n
            slots[t] = g
            group_target[n] = t
            n += 1
        group_of[e] = g
    return group_of, group_target[:n]


@numba.njit(cache=True, nogil=True)
def _release(group_target: np.ndarray, slots: np.ndarray) -> None:
    """``slots`` all -1 again after ``_groups``."""
    for g in range(group_target.size):
        slots[group_target[g]] = -1


@numba.njit(cache=True, nogil=True)
def _ascending(values: np.ndarray) -> np.ndarray:
    """``np.sort(values)`` for values >= 0 (item indexes): an LSD radix sort on bytes, as far
    as the largest value needs. Numba's ``np.sort`` (a quicksort) took ~9 µs for the ~190
    targets of a ranking, this ~1.5 µs: the bytes above the largest cost no pass."""
    out = values.copy()
    top = 0
    for v in out:
        top = max(top, v)
    spare = np.empty(out.size, dtype=np.int64)
    count = np.empty(256, dtype=np.int64)
    shift = 0
    while (top >> shift) > 0:
        count[:] = 0
        for v in out:
            count[(v >> shift) & 255] += 1
        total = 0
        for d in range(256):
            total, count[d] = total + count[d], total
        for v in out:
            d = (v >> shift) & 255
            spare[count[d]] = v
            count[d] += 1
        out, spare = spare, out
        shift += 8
    return out


@numba.njit(cache=True, nogil=True)
def _in_slots(targets: np.ndarray, end: int, slots: np.ndarray) -> bool:
    """Every one of the first ``end`` targets indexes ``slots``: one pass, cheaper than the
    ``max``/``min`` calls of ``scratch_slots`` (~3 µs a ranking)."""
    for e in range(end):  # noqa: SIM110 (numba compiles no generator for all())
        if targets[e] < 0 or targets[e] >= slots.size:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def relation_sums(
    targets: np.ndarray,
    strengths: np.ndarray,
    row_of: np.ndarray,
    end: int,
    recency: np.ndarray,
    long_recency: np.ndarray,
    slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``signals.relation_scores`` over the first ``end`` entries: per target (ascending) with
    at least one kept entry (``short > 0`` or ``long > 0``, short = strength × recency of its
    row), the sums of ``short`` and ``long`` over all its entries in entry order, and the row
    of its largest kept ``short + 1e-12·long`` (the earliest of equals). The kept targets are
    sorted as values (``_ascending``) and found again through ``slots``."""
    group_of, group_target = _groups(targets, end, slots)
    n = group_target.size
    short_sum = np.zeros(n)
    long_sum = np.zeros(n)
    best_share = np.full(n, -np.inf)
    best_row = np.full(n, -1, dtype=np.int64)
    has = np.zeros(n, dtype=np.bool_)
    for e in range(end):
        g = group_of[e]
        row = row_of[e]
        short = strengths[e] * recency[row]
        long = strengths[e] * long_recency[row]
        short_sum[g] += short
        long_sum[g] += long
        if short > 0 or long > 0:
            has[g] = True
            share = short + 1e-12 * long
            if share > best_share[g]:
                best_share[g] = share
                best_row[g] = row
    uniq = _ascending(group_target[has])
    out_short, out_long = np.empty(uniq.size), np.empty(uniq.size)
    out_best = np.empty(uniq.size, dtype=np.int64)
    for i in range(uniq.size):
        g = slots[uniq[i]]
        out_short[i], out_long[i], out_best[i] = short_sum[g], long_sum[g], best_row[g]
    _release(group_target, slots)
    return uniq, out_short, out_long, out_best


@numba.njit(cache=True, nogil=True)
def recency_sums(
    targets: np.ndarray,
    strengths: np.ndarray,
    row_of: np.ndarray,
    stamps: np.ndarray,
    buy: np.ndarray,
    now: float,
    taus: tuple[float, float],
    buy_weight: float,
    short_rows: int,
    long_rows: int,
    slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """``signals.relation_scores`` in one call: each row's recency on both horizons (``taus``:
    short, long), as its per-query Python loop computed them, only for the first
    ``short_rows`` (``long_rows``) rows (0.0 for the others), then ``relation_sums`` over
    every entry.
    ``math.exp`` compiles to the C library's ``exp``, the one CPython's calls (no vector
    library here: numba's SVML is off), so the bits are the same (``tests/unit/
    test_relation_kernels.py`` compares them on many ages). Not ``ok`` (nothing done) when a
    target is outside ``slots``."""
    none = np.empty(0, dtype=np.int64)
    if not _in_slots(targets, targets.size, slots):
        return none, np.empty(0), np.empty(0), none, False
    recency = np.zeros(stamps.size)
    long_recency = np.zeros(stamps.size)
    tau, long_tau = taus
    for r in range(stamps.size):
        age = now - stamps[r]
        age = age if age > 0.0 else 0.0  # Python's max(0.0, age), NaN included
        weight = buy_weight if buy[r] else 1.0
        if r < short_rows:
            recency[r] = weight * math.exp(-age / tau)
        if r < long_rows:
            long_recency[r] = weight * math.exp(-age / long_tau)
    uniq, short, long, best = relation_sums(
        targets, strengths, row_of, targets.size, recency, long_recency, slots
    )
    return uniq, short, long, best, True


@numba.njit(cache=True, nogil=True)
def weighted_sums(
    targets: np.ndarray,
    strengths: np.ndarray,
    row_of: np.ndarray,
    end: int,
    weights: np.ndarray,
    slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per target of the first ``end`` entries (ascending): the sum of ``strength ×
    weights[row]`` in entry order (``recent_relation.recent_from_rows``)."""
    group_of, group_target = _groups(targets, end, slots)
    sums = np.zeros(group_target.size)
    for e in range(end):
        sums[group_of[e]] += strengths[e] * weights[row_of[e]]
    uniq = _ascending(group_target)
    out = np.empty(uniq.size)
    for i in range(uniq.size):
        out[i] = sums[slots[uniq[i]]]
    _release(group_target, slots)
    return uniq, out


@numba.njit(cache=True, nogil=True)
def weighted_sums_at(
    targets: np.ndarray, strengths: np.ndarray, row_of: np.ndarray, w: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """``weighted_sums`` over all entries, checking the targets against ``s`` itself: not
    ``ok`` (nothing done) when one is outside."""
    if not _in_slots(targets, targets.size, s):
        return np.empty(0, dtype=np.int64), np.empty(0), False
    uniq, sums = weighted_sums(targets, strengths, row_of, targets.size, w, s)
    return uniq, sums, True
