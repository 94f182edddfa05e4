"""Relation rows of a whole query set at once: one vectorised pass instead of one call per query.

Ranking needs, for every item of a user's query set (up to 100), that item's relation row
(targets and strengths). Reading them one ``related`` call at a time cost ~18 % of a burst on
co-occurrence alone: per row, a dict turned into arrays, a Python loop over the partners'
counts, a partition and a sort. Here the rows are read together as one flat ``Rows`` triple
(``targets``, ``strengths``, ``row_of``: the position in the query list each entry belongs to),
rows in query order. Inside a row the order is not defined: ranking sums and compares per
target, it never reads positions (``RelatedItems.related`` still returns strongest first).

Sources that have no batch read (``related_many``) are read one row at a time through
``rows_of``, so any ``RelatedItems`` keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: (targets, strengths, row_of): every query's row, flattened, rows in query order
Rows = tuple[np.ndarray, np.ndarray, np.ndarray]
#: a query: (item index, role)
Query = tuple[int, str]

_NO_INT = np.zeros(0, dtype=np.int64)
_NO_FLOAT = np.zeros(0, dtype=np.float64)
EMPTY_ROWS: Rows = (_NO_INT, _NO_FLOAT, _NO_INT)


def rows_of(relations: Any, queries: Sequence[Query]) -> Rows:
    """Every query's row from any ``RelatedItems``: its batch read when it has one."""
    if not queries:
        return EMPTY_ROWS
    many = getattr(relations, "related_many", None)
    if many is not None:
        rows: Rows = many(queries)
        return rows
    parts = [relations.related(q, role) for q, role in queries]
    return concat_rows(parts)


def concat_rows(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> Rows:
    """Per-query rows (in query order) as one ``Rows`` triple."""
    if not parts:
        return EMPTY_ROWS
    sizes = np.fromiter((p[0].size for p in parts), dtype=np.int64, count=len(parts))
    if not sizes.any():
        return EMPTY_ROWS
    targets = np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False)
    strengths = np.concatenate([p[1] for p in parts]).astype(np.float64, copy=False)
    return targets, strengths, np.repeat(np.arange(len(parts), dtype=np.int64), sizes)


#: up to this many rows longer than ``k``, ``top_k_per_row`` partitions each row on its own
FEW_LONG_ROWS = 4


def top_k_per_row(strength: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray | None:
    """Mask of the ``k`` strongest entries of each row of a flat array (rows contiguous, of
    ``sizes``); None when no row is longer than ``k`` (everything is kept).

    Co-occurrence reads its rows through ``relation_kernels.cooc_rows``, which hands a read
    back here only when a long row ties (or holds a NaN) at its k-th strongest: this pick
    among the tied entries is then the one every read makes. With few long rows each is
    partitioned on its own slice (~4 numpy calls a row), else they go through the padded
    matrix below; the mask is the same: the k-th largest of a row is the same value, and a row
    where it ties takes the matrix path's pick."""
    lens = sizes.tolist()
    if max(lens, default=0) <= k:
        return None
    if sum(n > k for n in lens) > FEW_LONG_ROWS:
        return _top_k_grid(strength, sizes, k)
    keep = np.ones(strength.size, dtype=bool)
    start = 0
    for n in lens:
        if n > k:
            row = strength[start : start + n]
            above = row >= np.partition(row, n - k)[n - k]
            if int(np.count_nonzero(above)) != k:  # a tie at the k-th: the matrix path's pick
                return _top_k_grid(strength, sizes, k)
            keep[start : start + n] = above
        start += n
    return keep


def _top_k_grid(strength: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray | None:
    """``top_k_per_row`` for any number of long rows: rows longer than ``k`` are laid into one
    padded matrix and partitioned together (one numpy call).

    The k-th largest value of each long row (``np.partition``, ~3× cheaper than
    ``argpartition`` here) keeps exactly the entries at or above it when no other entry ties
    with it, the usual case; a row with such a tie takes the ``argpartition`` pick, as before."""
    big = np.flatnonzero(sizes > k)
    if big.size == 0:
        return None
    starts = np.cumsum(sizes) - sizes
    lens = sizes[big]
    width = int(lens.max())
    ends = np.cumsum(lens)
    row = np.repeat(np.arange(big.size), lens)
    col = np.arange(int(ends[-1])) - np.repeat(ends - lens, lens)
    flat = np.repeat(starts[big], lens) + col
    grid = np.full((big.size, width), -np.inf)
    grid[row, col] = strength[flat]
    kth = np.partition(grid, width - k, axis=1)[:, width - k]
    above = strength[flat] >= kth[row]
    keep = np.ones(strength.size, dtype=bool)
    if int(np.count_nonzero(above)) == big.size * k:  # exactly k per row: no tie at the k-th
        keep[flat] = above
        return keep
    best = np.argpartition(-grid, k - 1, axis=1)[:, :k]
    keep[flat] = False
    keep[(starts[big][:, None] + best).ravel()] = True
    return keep


def strongest_first(targets: np.ndarray, strengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row sorted by strength, descending (ties: the order given)."""
    order = np.argsort(-strengths, kind="stable")
    return targets[order], strengths[order]
