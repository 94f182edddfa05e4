"""Incremental updates of a lookup's raw rows through inverted lists, for large batches.

Why: an exact update compares each new or changed item with every item, both ways: its own
rows against every target, and every query against it (the rows it may enter). ~1.2 s of CPU
for 1,024 items into 68,260 here, linear in the catalog (~5 s at 273k items), for every batch
of catalog changes. A worker computes updates in a thread, but that is a core taken from
serving.

Items are grouped by nearest centroid three times (``PARTS``): as targets, and as queries of
each role. The groupings are made once, at the first batch that uses them (seeded spherical
k-means, ``lookup_ivf.make_lists``), and every item changed or added since is put into its
nearest list of each; ``label`` buffers of the lookup hold every item's list, so a copy or a
growth of the lookup carries them.

* The rows a batch of new targets enters (``merge``, from ``MERGE_LISTS_MIN`` targets): a
  query list whose members lie within ``r`` of their mean ``μ`` holds no row a unit target t
  beats unless ``μ·t + r`` exceeds its members' lowest K-th similarity (``q·t ≤ μ·t + r``),
  so only the lists that may are compared: exact, and 1–5 % of the pairs on the grocery
  products' embeddings.
* The rows of the new, changed and stale items (``recompute``, above ``exact_max`` items and
  from ``RECOMPUTE_LISTS_MIN`` rows): each compared with its ``nprobe`` nearest target lists,
  as the approximate build does, and checked the same way: ``CHECK`` of them get exact rows,
  ``nprobe`` doubles until they hold ``lookup_ivf.MIN_RECALL`` of the exact targets, and the
  rows are computed exactly when that would reach a quarter of the lists.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from stream.domain import lookup_ivf
from stream.domain.row_top_k import entered

if TYPE_CHECKING:
    from stream.domain.lookup import QueryTargetLookup

#: the three groupings: targets, and the queries of each role (``lookup.ROLES``)
PARTS = ("target", "view", "buy")
_EMBEDDING = {"target": 2, "view": 0, "buy": 1}
#: recomputed rows the check compares with exact ones per update and role
CHECK = 64
#: fewest rows recomputed through the lists (fewer: exactly, as cheap as the check)
RECOMPUTE_LISTS_MIN = 4 * CHECK
#: fewest new targets entered through the query lists (fewer: the exact merge is cheaper
#: than the lists' bounds; 68,260 items: 1,024 targets 0.50 → 0.09–0.20 s, 64 about even)
MERGE_LISTS_MIN = 256
#: share of the pairs the bound leaves above which the exact merge is cheaper
DENSE_SHARE = 0.25


def update(lookup: QueryTargetLookup, pos: np.ndarray, stale: np.ndarray, chunk: int) -> None:
    """The rows after items ``pos`` changed or arrived (their embeddings written; ``stale``:
    rows that held a changed item). A batch of ``MERGE_LISTS_MIN`` or more enters the others'
    rows through the query lists (``merge``, exact); fewer cost less exactly. Their own rows
    and the stale ones: ``rows_of``."""
    large = pos.size >= MERGE_LISTS_MIN
    if large or lookup.centroids:  # (once made, the groupings follow every item)
        place(lookup, pos)
    if large:
        merge(lookup, pos, chunk)
    else:
        lookup._merge(pos, chunk)
    rows_of(lookup, np.union1d(pos, stale), chunk)


def rows_of(lookup: QueryTargetLookup, queries: np.ndarray, chunk: int) -> None:
    """Rows of ``queries`` again: through the target lists (``recompute``, checked) for a
    lookup above ``exact_max`` items and enough rows for the check to be worth it (it
    computes ``CHECK`` rows exactly), else exactly."""
    if len(lookup) > lookup.exact_max and queries.size >= RECOMPUTE_LISTS_MIN:
        place(lookup, queries[:0])  # (the groupings, if none were made)
        recompute(lookup, queries)
    elif queries.size:
        lookup.recompute(queries, chunk)


def place(lookup: QueryTargetLookup, pos: np.ndarray) -> None:
    """Put items ``pos`` (embeddings already written) into their nearest list of each
    grouping, making the groupings first where there are none (a build or a load)."""
    for part in PARTS:
        emb = lookup.embeddings[_EMBEDDING[part]]
        centroids = lookup.centroids.get(part)
        if centroids is None:
            _group(lookup, part)
        elif pos.size:
            lookup.labels[part][pos] = np.argmax(emb[pos] @ centroids.T, axis=1)


def _group(lookup: QueryTargetLookup, part: str) -> None:
    n = len(lookup)
    lists = lookup_ivf.make_lists(
        lookup.embeddings[_EMBEDDING[part]], np.ones(n, dtype=bool), lookup_ivf.n_lists(n)
    )
    lookup.centroids[part] = lists.centroids
    sizes = np.diff(lists.starts)
    lookup.labels[part][lists.members] = np.repeat(np.arange(len(lists)), sizes)


def lists_of(lookup: QueryTargetLookup, part: str, members: np.ndarray) -> lookup_ivf.Lists:
    """The grouping ``part`` over the items where ``members`` is True."""
    centroids = lookup.centroids[part]
    label = lookup.labels[part]
    keep = np.flatnonzero(members & (label >= 0))
    keep = keep[np.argsort(label[keep], kind="stable")]
    starts = np.searchsorted(label[keep], np.arange(len(centroids) + 1))
    return lookup_ivf.Lists(centroids, keep, starts)


def recompute(lookup: QueryTargetLookup, queries: np.ndarray) -> None:
    """Rows of ``queries`` from their nearest target lists, ``nprobe`` doubled until the
    check passes, as the build does; exact when that would reach a quarter of the lists."""
    if not queries.size:
        return
    targets = lists_of(lookup, "target", lookup.active)
    emb = lookup.embeddings[2]
    check = lookup_ivf.sample_of(queries.size, CHECK)
    rows = {}
    for ri, role in enumerate(_ROLES):
        q_emb = lookup.embeddings[ri][queries]
        exact = lookup_ivf.exact_rows(q_emb[check], queries[check], emb, lookup.active, lookup.k)
        nprobe = lookup_ivf.NPROBE
        while role not in rows:
            if 4 * nprobe >= len(targets):
                lookup.exact_updates += 1
                lookup.recompute(queries)
                return
            idx, vals = lookup_ivf.approximate_rows(q_emb, queries, emb, targets, lookup.k, nprobe)
            if lookup_ivf.recall(idx[check], exact) >= lookup_ivf.MIN_RECALL:
                rows[role] = idx, vals
            nprobe *= 2
    for role, (idx, vals) in rows.items():
        lookup._store(role, queries, idx, vals)
    lookup.version += 1


def merge(lookup: QueryTargetLookup, pos: np.ndarray, chunk: int = 256) -> None:
    """Enter the targets ``pos`` into every other row they beat, exactly, comparing them only
    with the query lists that can hold such a row. A query q of a list whose members lie
    within ``r`` of their mean ``μ`` has ``q·t ≤ μ·t + r`` for a unit target t, so a list
    where ``μ·t + r`` is not above its members' lowest K-th similarity holds no row t beats
    (measured on the grocery products' embeddings: 1–5 % of the pairs left to compare).

    Rows with a free slot (K-th -inf: a release cut them short, or they hold fewer than K
    targets) take any target: they stay out of the lists, whose bound they would open to every
    target, and go through ``free_merge``, every new target offered to each. (In the lists,
    they had made most pairs pass ``DENSE_SHARE``, and so every row go through the exact
    merge.)"""
    others = np.ones(len(lookup), dtype=bool)
    others[pos] = False  # their own rows are recomputed next
    t_new = lookup.embeddings[2][pos]
    for ri, role in enumerate(_ROLES):
        kth = lookup._kth(role)
        free = others & (kth[: len(lookup)] == -np.inf)
        free_merge(lookup, role, np.flatnonzero(free), pos, chunk)  # (rows apart: any order)
        lists = lists_of(lookup, role, others & ~free)
        members, starts = lists.members, lists.starts
        q_emb, q_kth = lookup.embeddings[ri][members], kth[members]  # list by list
        centers, radius, lowest = _bounds(q_emb, q_kth, starts)
        may = t_new @ centers.T + radius[None, :] + _SLACK > lowest[None, :]
        if (may @ np.diff(starts)).sum() > DENSE_SHARE * may.shape[0] * max(1, members.size):
            lookup._merge(pos, chunk, (role,), np.flatnonzero(others & ~free))
            continue
        rows, cols, vals = [], [], []
        for c in np.flatnonzero(may.any(axis=0)).tolist():
            a, b = starts[c], starts[c + 1]
            group = np.flatnonzero(may[:, c])
            sims = q_emb[a:b] @ t_new[group].T
            hit = np.nonzero(sims > q_kth[a:b, None])
            rows.append(members[a + hit[0]])
            cols.append(group[hit[1]])
            vals.append(sims[hit])
        if rows and sum(r.size for r in rows):
            kept, local = np.unique(np.concatenate(rows), return_inverse=True)
            old_i, old_v = lookup._held(role, kept)
            at = (local, np.concatenate(cols))
            dense = partial(_block, lookup.embeddings[ri], kept, t_new)
            idx, out = entered(old_i, old_v, at, pos, np.concatenate(vals), lookup.k, dense)
            lookup._store(role, kept, idx, out)


def free_merge(
    lookup: QueryTargetLookup, role: str, rows: np.ndarray, pos: np.ndarray, chunk: int
) -> None:
    """Enter the targets ``pos`` into ``rows``, rows with free slots (-inf at the end): the
    exact merge over those rows alone (raw cosines, as ``merge``, which runs only for lookups
    without hub scores). Any new target beats a free slot, so every one is offered to every
    such row, through the compiled dense merge. Before that merge was compiled it took ~5 s a
    role at 136,520 items after a release had cut ~130,000 rows short, so only the targets
    that could enter were offered (a partition, a nonzero and a sparse entry, ~1.2 s a role);
    compiled, ~0.1 s a role there."""
    if rows.size:  # (most updates: no row was cut short)
        lookup._merge(pos, chunk, (role,), rows)


def _block(q_emb: np.ndarray, rows: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    """Rows × new targets similarities (no row is a new target's own: those are recomputed)."""
    return q_emb[rows] @ t_new.T


def _bounds(
    q_emb: np.ndarray, q_kth: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per list (its members' rows ``q_emb[starts[c]:starts[c + 1]]``): their mean, their
    largest distance to it, their lowest K-th similarity (+inf for an empty list)."""
    count, sizes = len(starts) - 1, np.diff(starts)
    centers = np.zeros((count, q_emb.shape[1]), dtype=np.float32)
    radius = np.zeros(count, dtype=np.float32)
    lowest = np.full(count, np.inf, dtype=np.float32)
    full = sizes > 0
    if q_emb.shape[0]:
        first = starts[:-1][full]
        centers[full] = np.add.reduceat(q_emb, first, axis=0) / sizes[full, None]
        away = np.linalg.norm(q_emb - centers[np.repeat(np.arange(count), sizes)], axis=1)
        radius[full] = np.maximum.reduceat(away, first)
        lowest[full] = np.minimum.reduceat(q_kth, first)
    return centers, radius, lowest


_ROLES = ("view", "buy")  # (``lookup.ROLES``: that module imports this one)
#: float32 rounding of the bound (unit vectors: products within ~1e-6 of exact)
_SLACK = 1e-4
