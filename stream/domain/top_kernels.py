"""Compiled kernels (numba) for ``top_lists``: bringing a top list up to date with the items
that grew since its last read (``merge_top``), and the catalog's popular lists read whole in
one call (``popular_tops``, ``rebuild_row``).

Why compiled: candidate pools read ~6 per-feature lists and the popular list per burst, each
a few hundred entries of the grown-items log behind. The Python merge (a loop over the log
entries, bisect inserts, a remembered key per member) and the numpy "admit" test cost ~40 µs a
read on the quick bench (~15 % of a burst in process), for lists of 50 items and logs of at
most 64 entries: interpreter overhead, not work. With that merge compiled, the Python around
it (closures, numpy gathers of the keys, an admit call, a merge call per list) still cost
~57 µs a ranking for its 7 lists, most of them a couple of log entries behind: the popular
tables now do the keys, the admit test, the merge and the rows' first ``k`` for all of a
ranking's feature lists in one call (~13 µs a ranking on the same workload).

Exactness: ``merge_top`` returns exactly ``top_lists.best`` of the same candidates (key
descending, then index ascending: a total order), so a merged list equals a rebuilt one;
``tests/unit/test_top_kernels.py`` compares them, ties and repeats included. ``merge_top``
adds or multiplies no floats; the popular tables' keys are ``popularity + tiebreak``, the
one float add the catalog's numpy key did, element by element (``tests/unit/
test_popular_tops.py`` compares every read with a full recomputation). Indexes are checked
against the arrays they read (numba does not bounds-check): an out-of-range index raises
IndexError as numpy indexing would.
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
def _admits(
    g: int, available: np.ndarray, deleted: np.ndarray, feature_ids: np.ndarray, fid: int
) -> bool:
    """Item ``g`` may be shown (in stock, not deleted) and, unless ``fid`` < 0, carries feature
    ``fid`` (read by element: a row view costs more than the whole test)."""
    if available[g] <= 0 or deleted[g]:
        return False
    if fid < 0:
        return True
    width = feature_ids.shape[1]
    f = 0
    while f < width and feature_ids[g, f] != fid:
        f += 1
    return f < width


#: more admitted grown entries than this (a list read after a long pause) go through
#: ``merge_top``'s sorts; fewer are inserted one by one, cheaper than the sorts' allocations
FEW = 16


@numba.njit(cache=True, nogil=True)
def _before(key: float, index: int, other_key: float, other_index: int) -> bool:
    """``key``/``index`` ranks before ``other_key``/``other_index``: key descending, then index
    ascending (``merge_top``'s order; keys not NaN)."""
    return key > other_key or (key == other_key and index < other_index)


@numba.njit(cache=True, nogil=True)
def insert_few(
    items: np.ndarray,
    item_keys: np.ndarray,
    picked: np.ndarray,
    keys: np.ndarray,
    m: int,
    out: np.ndarray,
) -> int:
    """A list's members ``items`` (best first, keys ``item_keys``) merged with ``m`` admitted
    items (``picked[:m]``, keys ``keys[:m]``, repeats allowed, no NaN key), the best
    ``out.size`` written into ``out``; returns how many. What ``merge_top`` returns for them
    when the members that are not admitted keep their order (within an epoch keys only grow,
    so a member that grew is admitted): the admitted items sorted by insertion (``picked`` and
    ``keys`` reordered in place), then one merge pass, a member that is also admitted taking
    its admitted place. For a few items this beats ``merge_top``'s two sorts and allocations
    (the popular lists' ``_merge_row`` and trending's list share it)."""
    p = 0  # picked[:p]: the distinct admitted items, best first
    for j in range(m):
        g, key = picked[j], keys[j]
        if g in picked[:p]:
            continue
        q = p
        while q > 0 and _before(key, g, keys[q - 1], picked[q - 1]):
            picked[q], keys[q] = picked[q - 1], keys[q - 1]
            q -= 1
        picked[q], keys[q] = g, key
        p += 1
    n, depth = items.size, out.size
    a = b = c = 0  # next member, next admitted item, slots written
    while c < depth:
        while a < n and items[a] in picked[:p]:
            a += 1
        if a < n and (b == p or _before(item_keys[a], items[a], keys[b], picked[b])):
            out[c] = items[a]
            a += 1
        elif b < p:
            out[c] = picked[b]
            b += 1
        else:
            break
        c += 1
    return c


@numba.njit(cache=True, nogil=True)
def _merge_row(
    rows: np.ndarray,
    counts: np.ndarray,
    r: int,
    grown: np.ndarray,
    fid: int,
    popularity: np.ndarray,
    tiebreak: np.ndarray,
    available: np.ndarray,
    deleted: np.ndarray,
    feature_ids: np.ndarray,
) -> None:
    """Row ``r`` of ``rows`` brought up to date with the log entries ``grown``, in place: what
    ``merge_top`` returns for the row's members and the grown items ``_admits`` takes, keys
    ``popularity + tiebreak`` (the catalog's numpy key did the same add). A member that
    grew is admitted at or above the lowest key, so the members that are not are in the row's
    order with the keys they had: with a few admitted items (distinct, not NaN) the row is a
    merge of those members and the admitted items, sorted by insertion, and with none it stays
    as it is."""
    depth = rows.shape[1]
    n = counts[r]
    items = rows[r, :n].copy()
    item_keys = np.empty(n)
    nan = False
    for i in range(n):
        item_keys[i] = popularity[items[i]] + tiebreak[items[i]]
        nan |= item_keys[i] != item_keys[i]
    lowest = np.min(item_keys) if n >= depth and n > 0 else -np.inf
    limit = min(popularity.size, tiebreak.size, available.size, deleted.size, feature_ids.shape[0])
    picked = np.empty(grown.size, dtype=np.int64)
    keys = np.empty(grown.size)
    m = 0
    for j in range(grown.size):
        g = grown[j]
        if g < 0 or g >= limit:
            raise IndexError("item index out of range")
        if _admits(g, available, deleted, feature_ids, fid):
            key = popularity[g] + tiebreak[g]
            if not key < lowest:
                picked[m] = g
                keys[m] = key
                nan |= key != key
                m += 1
    if m == 0:
        return
    if nan or m > FEW:
        merged = merge_top(items, item_keys, picked[:m], keys[:m], np.ones(m, np.bool_), depth)
        rows[r, : merged.size] = merged
        counts[r] = merged.size
        return
    counts[r] = insert_few(items, item_keys, picked, keys, m, rows[r])


@numba.njit(cache=True, nogil=True)
def popular_tops(
    rows: np.ndarray,
    counts: np.ndarray,
    marks: np.ndarray,
    sizes: np.ndarray,
    slots: np.ndarray,
    row_names: np.ndarray,
    names: np.ndarray,
    by_feature: bool,
    k: int,
    log: np.ndarray,
    base: int,
    end: int,
    span: int,
    popularity: np.ndarray,
    tiebreak: np.ndarray,
    available: np.ndarray,
    deleted: np.ndarray,
    feature_ids: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The first ``k`` of the lists ``names`` of a ``top_lists.PopularTops`` table, one after
    the other, each brought up to date with the log entries since its ``marks`` (the log holds
    those from position ``base`` to ``end``). List ``name`` is row ``slots[name]`` (-1: none
    yet), and row ``r`` keeps its first ``counts[r]`` slots. A list that needs a rebuild (no
    row yet, ``marks`` before ``base``, or more than ``max(sizes, span)`` entries behind:
    ``GrowingTops.top``'s test) stops the pass: then the answer is ``(empty, its position in
    names)``, the lists before it already merged; else ``(lists, -1)``. ``by_feature``: row
    ``r`` admits only items carrying feature ``row_names[r]``."""
    total = 0
    for j in range(names.size):
        name = names[j]
        if name < 0 or name >= slots.size or slots[name] < 0:
            return np.empty(0, dtype=np.int64), j
        r = slots[name]
        mark = marks[r]
        if mark < base or end - mark > max(sizes[r], span):
            return np.empty(0, dtype=np.int64), j
        if mark < end:
            grown = log[mark - base : end - base]
            fid = row_names[r] if by_feature else -1
            _merge_row(
                rows, counts, r, grown, fid, popularity, tiebreak, available, deleted, feature_ids
            )
            marks[r] = end
        total += min(k, counts[r])
    out = np.empty(total, dtype=np.int64)
    at = 0
    for j in range(names.size):
        r = slots[names[j]]
        c = min(k, counts[r])
        out[at : at + c] = rows[r, :c]
        at += c
    return out, -1


@numba.njit(cache=True, nogil=True)
def rebuild_row(
    rows: np.ndarray,
    counts: np.ndarray,
    marks: np.ndarray,
    sizes: np.ndarray,
    r: int,
    members: np.ndarray,
    end: int,
    fid: int,
    popularity: np.ndarray,
    tiebreak: np.ndarray,
    available: np.ndarray,
    deleted: np.ndarray,
    feature_ids: np.ndarray,
) -> None:
    """Row ``r`` rebuilt from all its ``members`` (distinct, any order), up to date with log
    position ``end``: ``top_lists.best`` of those ``_admits`` takes, the way it picks them
    (those above the row's k-th largest key, then the lowest indexes tied with it) and
    ordered by ``merge_top``. In numpy (sort, mask, partition, lexsort) a rebuild cost ~12 µs
    even for a handful of members, and a list read after more than 512 other log entries is
    rebuilt: a few lists per ranking on the bench."""
    depth = rows.shape[1]
    limit = min(popularity.size, tiebreak.size, available.size, deleted.size, feature_ids.shape[0])
    picked = np.empty(members.size, dtype=np.int64)
    keys = np.empty(members.size)
    m = 0
    nan = False
    for g in members:
        if g < 0 or g >= limit:
            raise IndexError("item index out of range")
        if _admits(g, available, deleted, feature_ids, fid):
            picked[m] = g
            keys[m] = popularity[g] + tiebreak[g]
            nan |= keys[m] != keys[m]
            m += 1
    picked, keys = picked[:m], keys[:m]
    if m > depth and not nan:
        kth = np.partition(keys.copy(), m - depth)[m - depth]  # the depth-th largest
        above = keys > kth
        tied = np.sort(picked[keys == kth])[: depth - np.count_nonzero(above)]
        picked = np.concatenate((picked[above], tied))
        keys = np.concatenate((keys[above], np.full(tied.size, kth)))
    merged = merge_top(picked[:0], keys[:0], picked, keys, np.ones(picked.size, np.bool_), depth)
    rows[r, : merged.size] = merged
    counts[r] = merged.size
    marks[r] = end
    sizes[r] = members.size


def warm_up() -> float:
    """Compile (or load from the cache) the kernels with the types the lists pass; returns the
    seconds it took."""
    started = time.perf_counter()
    i = np.zeros(2, dtype=np.int64)
    merge_top(i, np.ones(2), i, np.ones(2), np.ones(2, dtype=np.bool_), 1)
    table = np.zeros((2, 2), dtype=np.int64)
    feature_ids = np.zeros((2, 2), dtype=np.int32)
    args = (np.ones(2), np.ones(2), np.ones(2, dtype=np.int64), np.zeros(2, dtype=np.bool_))
    popular_tops(table, i, i, i, i, i, i, True, 2, i, 0, 0, 512, *args, feature_ids)
    rebuild_row(table, i, i, i, 0, i, 0, 1, *args, feature_ids)
    return time.perf_counter() - started
