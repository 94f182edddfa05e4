"""Row-wise top-k of a similarity block: the one selection every lookup build makes, and
the merges of new targets into existing rows that updates make.

Kept apart from ``stream.domain.lookup`` because both of its builds use it, the exact one and
the approximate one (``stream.domain.lookup_ivf``), and two builds that select alike leave
the same rows wherever they compared the same targets. The selections are compiled (numba,
``nogil``: builds and updates run in a thread beside the event loop), all through one rule
(``_offer``), so a build and a merge order ties alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numba
import numpy as np


def top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k columns of ``sims``: values descending, ties to the lower column; -inf
    (and NaN) entries never enter, so a row with fewer finite columns ends in -1 / -inf, and a
    +inf entry keeps its value under index -1. Values come back as float32, compared in
    ``sims``' own type.

    Why compiled: numpy needed a partition of a sample, a comparison, a nonzero and a lexsort
    over the block (or an argpartition of it), ~80 % of an exact build's time (9.0 s for the
    demo's 23,652 items, profiled); one pass a row keeping its best ``k`` in order is a
    comparison per column for nearly every column."""
    n_rows = sims.shape[0]
    out_i = np.full((n_rows, k), -1, dtype=np.int64)
    out_v = np.full((n_rows, k), -np.inf, dtype=np.float32)
    if k > 0 and sims.shape[1] > 0:
        _rows_top_k(sims, k, out_i, out_v)
    return out_i, out_v


def top_values(sims: np.ndarray, k: int) -> np.ndarray:
    """Row-wise ``k`` largest values of ``sims``, descending, -inf padded (``top_k``'s values:
    the hubness term's nearest similarities)."""
    return top_k(sims, k)[1]


@numba.njit(cache=True, nogil=True)
def _rows_top_k(sims: np.ndarray, k: int, out_i: np.ndarray, out_v: np.ndarray) -> None:
    """Each row's best ``k``, its columns offered in order (``_offer``)."""
    best_v = np.empty(k, dtype=sims.dtype)
    best_i = np.empty(k, dtype=np.int64)
    for r in range(sims.shape[0]):
        count = 0
        for j in range(sims.shape[1]):
            count = _offer(sims[r, j], j, best_v, best_i, count, k)
        _flush(r, count, best_v, best_i, out_i, out_v)


@numba.njit(cache=True, nogil=True)
def _rows_merged(
    ids: np.ndarray,
    sims: np.ndarray,
    new_ids: np.ndarray,
    new_sims: np.ndarray,
    k: int,
    out_i: np.ndarray,
    out_v: np.ndarray,
) -> None:
    """``merged`` a row at a time: its own targets offered first, then the new ones in order,
    as the columns of the block ``merged`` would stack (values held as float64, so a float32
    and a float64 block compare as they would stacked)."""
    best_v = np.empty(k, dtype=np.float64)
    best_i = np.empty(k, dtype=np.int64)
    for r in range(sims.shape[0]):
        count = 0
        for j in range(sims.shape[1]):
            count = _offer(sims[r, j], ids[r, j], best_v, best_i, count, k)
        for j in range(new_sims.shape[1]):
            count = _offer(new_sims[r, j], new_ids[j], best_v, best_i, count, k)
        _flush(r, count, best_v, best_i, out_i, out_v)


@numba.njit(cache=True, nogil=True)
def _offer(v: float, item: int, best_v: np.ndarray, best_i: np.ndarray, count: int, k: int) -> int:
    """``v`` (with ``item``) into a row's best ``count`` (of at most ``k``, kept descending):
    it enters only above the current k-th (strictly, so an earlier offer keeps a tie) and moves
    up past the values it beats, never past one it equals; -inf and NaN never enter. Returns
    the new count."""
    if not v > -np.inf:
        return count
    if count < k:
        p = count
        count += 1
    elif v > best_v[k - 1]:
        p = k - 1
    else:
        return count
    while p > 0 and v > best_v[p - 1]:
        best_v[p] = best_v[p - 1]
        best_i[p] = best_i[p - 1]
        p -= 1
    best_v[p] = v
    best_i[p] = item
    return count


@numba.njit(cache=True, nogil=True)
def _flush(
    r: int, count: int, best_v: np.ndarray, best_i: np.ndarray, out_i: np.ndarray, out_v: np.ndarray
) -> None:
    """Row ``r`` of the outputs: the best ``count``; an infinite value (+inf) under index -1."""
    for p in range(count):
        out_v[r, p] = best_v[p]
        out_i[r, p] = best_i[p] if np.isfinite(best_v[p]) else -1


def beaten_rows(sims: np.ndarray, kth: np.ndarray) -> np.ndarray:
    """The rows of ``sims`` with a value above their ``kth`` (the rows a merge changes), in
    order: one pass that stops at a row's first such value, where ``np.nonzero(sims > kth)``
    made a boolean block and listed every entry (~1 s of an update at 273,040 items)."""
    out = np.empty(sims.shape[0], dtype=np.int64)
    return out[: _beaten_rows(sims, kth, out)]


@numba.njit(cache=True, nogil=True)
def _beaten_rows(sims: np.ndarray, kth: np.ndarray, out: np.ndarray) -> int:
    count = 0
    for r in range(sims.shape[0]):
        for j in range(sims.shape[1]):
            if sims[r, j] > kth[r]:
                out[count] = r
                count += 1
                break
    return count


def warm_up() -> float:
    """Compile (or load from the cache) the kernels for the blocks builds and updates pass
    (float32 similarities, float64 too for ``top_k``); returns the seconds it took."""
    started = time.perf_counter()
    for dtype in (np.float32, np.float64):
        top_k(np.zeros((2, 3), dtype=dtype), 2)
    ids, sims = np.zeros((2, 2), dtype=np.int64), np.zeros((2, 2), dtype=np.float32)
    merged(ids, sims, np.zeros(3, dtype=np.int64), np.zeros((2, 3), dtype=np.float32), 2)
    beaten_rows(sims, np.zeros(2, dtype=np.float32))
    return time.perf_counter() - started


def merged(
    ids: np.ndarray, sims: np.ndarray, new_ids: np.ndarray, new_sims: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (``ids``/``sims``, n × k) with new candidates entered (``new_ids`` (c,) the same for
    every row, ``new_sims`` n × c): the top ``k`` of both, as ``top_k`` picks them from the two
    blocks side by side (existing targets first). Compiled as ``top_k`` is: stacking the
    blocks, selecting and gathering the ids back cost ~3x the selection itself."""
    out_i = np.full((sims.shape[0], k), -1, dtype=np.int64)
    out_v = np.full((sims.shape[0], k), -np.inf, dtype=np.float32)
    if k > 0:
        _rows_merged(ids, sims, np.asarray(new_ids, dtype=np.int64), new_sims, k, out_i, out_v)
    return out_i, out_v


def entered(
    ids: np.ndarray,
    sims: np.ndarray,
    at: tuple[np.ndarray, np.ndarray],
    new_ids: np.ndarray,
    new_sims: np.ndarray,
    k: int,
    dense: Callable[[], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``merged`` for sparse candidates: only the entries ``at`` = (rows, columns) of the
    n × c similarities are offered, with values ``new_sims``; every other entry counts as not
    beating the row. The rows come out as ``merged`` leaves them when those other entries are
    at or below each row's K-th (ties go to the lower column, existing targets first).

    Why: entering ~1,000 new items into a 68k-item lookup offered every row all of them, a
    ``k + 1,000``-column top-k a row (~1 s a batch). A row takes in the few that beat it.
    When rows are offered many (a row a release cut short takes any new target), ``merged``
    over the dense block (``dense()``: rows × ``new_ids``) is faster: lexsorting millions of
    entries (1,024 new items into 5,000 rows cut short) took 1.2 s a call."""
    n = ids.shape[0]
    rows, cols = at
    if dense is not None and rows.size > n * max(k, new_ids.size // 4):
        return merged(ids, sims, new_ids, dense(), k)
    row = np.concatenate([np.repeat(np.arange(n), k), rows])
    col = np.concatenate([np.tile(np.arange(k), n), k + cols])
    val = np.concatenate([sims.ravel(), new_sims])
    item = np.concatenate([ids.ravel(), new_ids[cols]])
    order = np.lexsort((col, -val, row))
    row, val, item = row[order], val[order], item[order]
    rank = np.arange(row.size) - np.searchsorted(row, np.arange(n))[row]
    keep = rank < k
    out_i = np.full((n, k), -1, dtype=np.int64)
    out_v = np.full((n, k), -np.inf, dtype=np.float32)
    out_i[row[keep], rank[keep]] = item[keep]
    out_v[row[keep], rank[keep]] = val[keep]
    out_i[~np.isfinite(out_v)] = -1
    return out_i, out_v
