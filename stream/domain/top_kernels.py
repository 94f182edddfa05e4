"""Compiled kernels (numba) for ``top_lists.GrowingTops``: bringing a top list up to date with
the items that grew since its last read, and who of them a per-feature list may take.

Why compiled: candidate pools read ~6 per-feature lists and the popular list per burst, each
a few hundred entries of the grown-items log behind. The Python merge (a loop over the log
entries, bisect inserts, a remembered key per member) and the numpy "admit" test cost ~40 µs a
read on the quick bench (~15 % of a burst in process), for lists of 50 items and logs of at
most 64 entries: interpreter overhead, not work.

Exactness: ``merge_top`` returns exactly ``top_lists.best`` of the same candidates (key
descending, then index ascending: a total order), so a merged list equals a rebuilt one;
``tests/unit/test_top_kernels.py`` compares them, ties and repeats included. Neither kernel
adds or multiplies floats: keys come in computed by the caller's numpy ``key``. Indexes are
checked against the arrays they read (numba does not bounds-check): an out-of-range index
raises IndexError as numpy indexing would.
"""

from __future__ import annotations

import time

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def merge_top(
    items: np.ndarray,
    item_keys: np.ndarray,
    grown: np.ndarray,
    grown_keys: np.ndarray,
    admitted: np.ndarray,
    depth: int,
) -> np.ndarray:
    """The best ``depth`` of ``items`` (a list's distinct members) and the ``admitted`` entries
    of ``grown`` (log entries, repeats allowed), by key descending then index ascending. Keys
    are current: an item in both has the same key in both, so its copies sort next to each
    other and only the first is kept."""
    n = items.size
    idx = np.empty(n + grown.size, dtype=np.int64)
    key = np.empty(n + grown.size)
    idx[:n] = items
    key[:n] = item_keys
    # a list already ``depth`` long keeps its members unless a grown item reaches its lowest
    # key (a tie may enter by index); NaN compares false, so with a NaN nothing is dropped
    lowest = np.min(item_keys) if n >= depth and n > 0 else -np.inf
    m = n
    for j in range(grown.size):
        if admitted[j] and not grown_keys[j] < lowest:
            idx[m] = grown[j]
            key[m] = grown_keys[j]
            m += 1
    idx = idx[:m]
    key = key[:m]
    # index ascending, then a stable sort by key descending: ties stay in index order
    by_index = np.argsort(idx, kind="mergesort")
    order = by_index[np.argsort(-key[by_index], kind="mergesort")]
    out = np.empty(min(depth, m), dtype=np.int64)
    count = 0
    last = -1
    for p in order:
        if count == out.size:
            break
        if idx[p] != last:
            out[count] = idx[p]
            count += 1
            last = idx[p]
    return out[:count]


@numba.njit(cache=True, nogil=True)
def eligible_with(
    grown: np.ndarray,
    available: np.ndarray,
    deleted: np.ndarray,
    feature_ids: np.ndarray,
    fid: int,
) -> np.ndarray:
    """Mask of ``grown`` items that may be shown (in stock, not deleted) and carry feature
    ``fid`` (``Catalog.eligible(g) & (feature_ids[g] == fid).any(axis=1)`` in one pass)."""
    out = np.zeros(grown.size, dtype=np.bool_)
    rows = feature_ids.shape[0]
    for j in range(grown.size):
        g = grown[j]
        if g < 0 or g >= rows or g >= available.size or g >= deleted.size:
            raise IndexError("item index out of range")
        if available[g] <= 0 or deleted[g]:
            continue
        for f in feature_ids[g]:
            if f == fid:
                out[j] = True
                break
    return out


def warm_up() -> float:
    """Compile (or load from the cache) both kernels with the types the lists pass; returns
    the seconds it took."""
    started = time.perf_counter()
    i = np.zeros(2, dtype=np.int64)
    merge_top(i, np.ones(2), i, np.ones(2), np.ones(2, dtype=np.bool_), 1)
    feature_ids = np.zeros((2, 2), dtype=np.int32)
    eligible_with(i, np.ones(2, dtype=np.int64), np.zeros(2, dtype=np.bool_), feature_ids, 1)
    return time.perf_counter() - started
