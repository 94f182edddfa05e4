"""Diversity: caps per category and per brand, and MMR (maximal marginal relevance).

A list of twenty items is only useful if it is not twenty kinds of string cheese. Caps bound how
many discoveries of one leaf category (or brand) a list holds; MMR trades score for novelty
against what is already chosen (``λ·score − (1−λ)·max similarity``, similarity = overlap of
item features), λ = 1 being pure score order. Items the user buys again are exempt from the
caps (a household buying five kinds of yoghurt wants them all). If the caps would leave a list
short, it is filled from the capped items in score order (a one-category shop still gets a
full list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stream.domain.catalog import PAD

#: MMR looks at this many candidates per list slot (4 × 20 = the best 80 for a list of 20)
MMR_POOL_PER_SLOT = 4


@dataclass(frozen=True)
class Caps:
    """One cap per grouping: ``groups[k][i]`` is item i's group id (PAD: no group, never
    capped) and at most ``limits[k]`` items of a group are chosen (None: no cap)."""

    groups: Sequence[np.ndarray]
    limits: Sequence[int | None]


def diversify(
    order: np.ndarray,
    caps: Caps,
    exempt: np.ndarray,
    size: int,
    score: np.ndarray | None = None,
    features: np.ndarray | None = None,
    mmr_lambda: float = 1.0,
) -> list[int]:
    """Choose up to ``size`` of the positions in ``order`` (sorted by score, best first).
    ``caps.groups``, ``exempt``, ``score`` and ``features`` are indexed by position."""
    if size <= 0 or order.size == 0:
        return []
    if mmr_lambda >= 1.0 or score is None or features is None:
        return _capped_in_order(order, caps, exempt, size)
    return _mmr(order, caps, exempt, size, score, features, mmr_lambda)


def _capped_in_order(order: np.ndarray, caps: Caps, exempt: np.ndarray, size: int) -> list[int]:
    """λ = 1: walk the score order once, skipping items whose group is full. Most lists fill
    within the first few dozen items, so a short prefix is walked first (only its groups reach
    Python); the whole order is walked only when the prefix leaves the list short — the same
    walk, so the same list."""
    prefix = max(4 * size, 32)
    chosen, overflow = _walk(order[:prefix] if prefix < order.size else order, caps, exempt, size)
    if len(chosen) < size and prefix < order.size:
        chosen, overflow = _walk(order, caps, exempt, size)
    chosen.extend(overflow[: size - len(chosen)])
    return chosen


def _walk(
    order: np.ndarray, caps: Caps, exempt: np.ndarray, size: int
) -> tuple[list[int], list[int]]:
    """Up to ``size`` positions of ``order`` within the caps, and those skipped for a cap."""
    active = [
        (g[order].tolist(), int(lim))
        for g, lim in zip(caps.groups, caps.limits, strict=True)
        if lim
    ]
    free = exempt[order].tolist()
    counts: list[dict[int, int]] = [{} for _ in active]
    chosen: list[int] = []
    overflow: list[int] = []
    for i, pos in enumerate(order.tolist()):
        if not free[i] and _full(i, active, counts):
            overflow.append(pos)
            continue
        if not free[i]:
            _count(i, active, counts)
        chosen.append(pos)
        if len(chosen) >= size:
            break
    return chosen, overflow


def _full(pos: int, active: list[tuple[list[int], int]], counts: list[dict[int, int]]) -> bool:
    for (groups, limit), count in zip(active, counts, strict=True):
        g = groups[pos]
        if g != PAD and count.get(g, 0) >= limit:
            return True
    return False


def _count(pos: int, active: list[tuple[list[int], int]], counts: list[dict[int, int]]) -> None:
    for (groups, _), count in zip(active, counts, strict=True):
        g = groups[pos]
        if g != PAD:
            count[g] = count.get(g, 0) + 1


def similarity(features: np.ndarray) -> np.ndarray:
    """Cosine of item feature sets (rows of feature ids, PAD-padded): shared / sqrt(n_i n_j)."""
    uniq, inv = np.unique(features, return_inverse=True)
    inv = inv.reshape(features.shape)
    onehot = np.zeros((features.shape[0], uniq.size), dtype=np.float64)
    rows = np.repeat(np.arange(features.shape[0]), features.shape[1])
    onehot[rows, inv.ravel()] = 1.0
    onehot[:, uniq == PAD] = 0.0
    norms = np.sqrt(onehot.sum(axis=1))
    onehot /= np.where(norms > 0, norms, 1.0)[:, None]
    return onehot @ onehot.T


def _mmr(
    order: np.ndarray,
    caps: Caps,
    exempt: np.ndarray,
    size: int,
    score: np.ndarray,
    features: np.ndarray,
    lam: float,
) -> list[int]:
    """Greedy MMR over the best ``MMR_POOL_PER_SLOT × size`` items of ``order`` (the
    similarity matrix is quadratic in the pool); capped items wait for the overflow fill, then
    the rest of ``order`` in score order if the list is still short."""
    pool = max(MMR_POOL_PER_SLOT * size, 50)
    order, beyond = order[:pool], order[pool:]
    sim = similarity(features[order])
    top = float(np.abs(score[order]).max())
    rel = score[order] / (top if top > 0 else 1.0)
    free = exempt[order]
    groups = [
        (np.unique(g[order], return_inverse=True), int(lim))
        for g, lim in zip(caps.groups, caps.limits, strict=True)
        if lim
    ]
    counts = [np.zeros(u.size, dtype=np.int64) for (u, _), _ in groups]
    capped = [u[inv] != PAD for (u, inv), _ in groups]
    taken = np.zeros(order.size, dtype=bool)
    max_sim = np.zeros(order.size, dtype=np.float64)
    chosen: list[int] = []
    while len(chosen) < size:
        open_ = ~taken
        for ((_, inv), limit), count, has in zip(groups, counts, capped, strict=True):
            open_ &= free | ~has | (count[inv] < limit)
        if not open_.any():
            break
        value = np.where(open_, lam * rel - (1.0 - lam) * max_sim, -np.inf)
        best = int(np.argmax(value))  # ties: the earlier (higher-scored) position
        taken[best] = True
        chosen.append(best)
        max_sim = np.maximum(max_sim, sim[best])
        if not free[best]:
            for ((_, inv), _), count in zip(groups, counts, strict=True):
                count[inv[best]] += 1
    rest = np.flatnonzero(~taken)[: size - len(chosen)]  # overflow, in score order
    out = [int(order[i]) for i in (*chosen, *rest.tolist())]
    return out + beyond[: size - len(out)].tolist()
