"""Pfeed's offline metric (numpy only): Recall@K of held-out true targets among distractors.

For one relation's held-out pairs (a seeded sample of distinct pairs), the candidate pool is
every true target of the sample plus ``distractors`` random items of the same catalog. For each
pair (q, t) the pool (minus q itself) is ranked by the method's score for q; the pair is a hit
at K when t is in the top K. Ties count by expectation (a tie-heavy method such as co-occurrence
on unseen items gets a fair share, not a lucky or unlucky order). Recall@K = mean hit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from models.pfeed.pairs import PairSet, relation_kind

#: scores(query items (n,), pool items (m,)) -> (n, m)
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
ROLE_ROW = {"view": 0, "buy": 1}


@dataclass(frozen=True)
class Task:
    """One relation's evaluation set: sampled distinct pairs, the pool, and pair segments."""

    name: str
    role: str
    query: np.ndarray
    target: np.ndarray
    pool: np.ndarray
    kind: np.ndarray  # "1→1" | "1→n" | "m→1" | "m→n"
    cold: np.ndarray  # target never a target in training


def make_task(
    test: PairSet,
    train: PairSet,
    items: np.ndarray,
    sample: int = 20_000,
    distractors: int = 10_000,
    many: int = 10,
    seed: int = 0,
) -> Task:
    rng = np.random.default_rng(seed)
    key = np.unique(test.query * (1 << 32) + test.target)
    if key.size > sample:
        key = np.sort(rng.choice(key, size=sample, replace=False))
    q, t = key >> 32, key & ((1 << 32) - 1)
    distinct = PairSet(test.name, test.role, q, t, np.zeros_like(q))
    extra = rng.choice(items, size=min(distractors, items.size), replace=False)
    pool = np.unique(np.concatenate([t, extra]))
    kind = relation_kind(distinct, test, many)  # degrees within all held-out pairs
    cold = ~np.isin(t, train.target)
    return Task(test.name, test.role, q, t, pool, kind, cold)


def hits(task: Task, scorer: Scorer, ks: tuple[int, ...] = (10, 50), chunk: int = 1024) -> dict[
    int, np.ndarray
]:
    """Per pair and K, the (expected) hit in [0, 1]."""
    out = {k: np.zeros(task.query.size) for k in ks}
    order = np.argsort(task.query, kind="stable")
    uq, first = np.unique(task.query[order], return_index=True)
    pool_pos = {int(p): i for i, p in enumerate(task.pool.tolist())}
    t_col = np.fromiter((pool_pos[int(t)] for t in task.target), dtype=np.int64)
    for start in range(0, uq.size, chunk):
        queries = uq[start : start + chunk]
        scores = scorer(queries, task.pool).astype(np.float64)
        self_col = np.searchsorted(task.pool, queries)
        is_self = (self_col < task.pool.size) & (
            task.pool[np.minimum(self_col, task.pool.size - 1)] == queries
        )
        scores[np.flatnonzero(is_self), self_col[is_self]] = -np.inf
        end = first[start + chunk] if start + chunk < uq.size else order.size
        rows = order[first[start] : end]
        row_of = np.searchsorted(queries, task.query[rows])
        s_true = scores[row_of, t_col[rows]]
        greater = (scores[row_of] > s_true[:, None]).sum(axis=1)
        ties = (scores[row_of] == s_true[:, None]).sum(axis=1) - 1
        for k in ks:
            out[k][rows] = np.clip((k - greater) / (ties + 1), 0.0, 1.0)
    return out


def embedding_scorer(emb: np.ndarray, role: str) -> Scorer:
    """Query-role embedding · target embedding (``emb`` is (3, items, dim))."""
    queries, targets = emb[ROLE_ROW[role]], emb[2]
    return lambda q, pool: queries[q] @ targets[pool].T


def cooccurrence_scorer(train: PairSet, n_items: int) -> Scorer:
    """The non-learned baseline: training pair counts, cosine-normalised like ``CoOccurrence``."""
    key, count = np.unique(train.query * (1 << 32) + train.target, return_counts=True)
    q_count = np.bincount(train.query, minlength=n_items).astype(np.float64)
    t_count = np.bincount(train.target, minlength=n_items).astype(np.float64)

    def score(q: np.ndarray, pool: np.ndarray) -> np.ndarray:
        want = (q[:, None] * (1 << 32) + pool[None, :]).ravel()
        pos = np.clip(np.searchsorted(key, want), 0, max(0, key.size - 1))
        found = key[pos] == want
        c = np.where(found, count[pos], 0).reshape(q.size, pool.size).astype(np.float64)
        norm = np.sqrt(np.maximum(q_count[q], 1.0)[:, None] * np.maximum(t_count[pool], 1.0))
        return c / norm

    return score


def summarise(task: Task, hit: dict[int, np.ndarray]) -> dict[str, dict[str, float]]:
    """Recall@K overall, per relation kind and for cold targets, with pair counts."""
    segments: dict[str, np.ndarray] = {"all": np.ones(task.query.size, dtype=bool)}
    for kind in ("1→1", "1→n", "m→1", "m→n"):
        segments[kind] = task.kind == kind
    segments["cold target"] = task.cold
    table: dict[str, dict[str, float]] = {}
    for name, mask in segments.items():
        if mask.any():
            row = {f"recall@{k}": round(float(h[mask].mean()), 4) for k, h in hit.items()}
            table[name] = {**row, "pairs": int(mask.sum())}
    return table
