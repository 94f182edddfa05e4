"""Exact top lists of a score that only grows, kept up to date from the items that grew.

Candidate pools read "the most popular items" (overall, per liked feature, trending) on every
burst. Recomputing them from the whole catalog each time costs a partition over every item;
the old caches instead refreshed every 256 interactions, so what a worker ranked depended on
*when* it last refreshed — two workers with the same learned state could rank one user
differently. Here a list is exact at every read and cheap to keep so: popularity (and the
forward-decayed trending counts) only grow, so an item outside the top ``depth`` can enter it
only by growing itself. Each list therefore remembers the position in a log of grown items
where it was last brought up to date, and a read merges the items grown since (a handful per
burst) into it, in one compiled call (``top_kernels.merge_top``). Anything that can shrink a
score or change who may be listed (stock, deletes, catalog edits that change features, a
trending rebase) starts a new ``epoch``, and lists are rebuilt in full. The catalog's popular
lists (``PopularTops``) follow the same rules, kept in a table that one compiled call reads
many lists of, except that a change concerning one item (its popularity went down, its
stock went out or came back, it was created, deleted or given other features) rebuilds only
the lists it belongs to (``PopularTops.invalidate``): a new epoch for each made every list of
every user rebuild at its next read.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from stream.domain.top_kernels import merge_top, popular_tops, rebuild_row

#: the log is dropped past this many entries; lists older than it are rebuilt in full
MAX_LOG = 1 << 16

#: a merge of more grown items than this first drops those below a full list's lowest key (one
#: numpy comparison), so ``admit`` runs only on items that could enter
SMALL = 64

#: a list this many log entries behind (or more than its member count) is rebuilt from its
#: members rather than merged: a merge of a few hundred entries costs a few µs (two gathers and
#: a compiled pass), a rebuild ~15 µs even for a handful of members
REBUILD_SPAN = 512

#: item indexes -> their scores (what a list ranks by, descending)
Key = Callable[[np.ndarray], np.ndarray]
#: a list's items, the grown items since, its depth -> its items brought up to date
Merge = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass
class _List:
    items: np.ndarray  # the top ``depth`` members, best first
    depth: int
    mark: int  # log position it is up to date with
    epoch: int


class GrowingTops:
    """Named exact top lists over one growing score (see the module docstring)."""

    def __init__(self) -> None:
        #: the log, an int64 buffer of ``MAX_LOG`` slots (its first ``_used`` hold entries), so
        #: a read slices it instead of converting a Python list of the items grown since
        self._log = np.zeros(MAX_LOG, dtype=np.int64)
        self._used = 0
        self._base = 0  # log position of ``_log[0]``
        self._lists: dict[Hashable, _List] = {}

    def grew(self, indexes: Iterable[int]) -> None:
        """These items' scores went up (never down: call ``top`` with a new epoch for that)."""
        used = self._used
        # most events grow one item: write it without building an array
        if isinstance(indexes, list) and len(indexes) == 1 and used < MAX_LOG:
            self._log[used] = indexes[0]
            self._used = used + 1
            return
        grown = np.asarray(indexes, dtype=np.int64).ravel()
        if used + grown.size > MAX_LOG:  # full: dropped, older lists are rebuilt in full
            self._base += used + grown.size
            self._used = 0
            return
        self._log[used : used + grown.size] = grown
        self._used = used + grown.size

    def top(
        self,
        name: Hashable,
        k: int,
        depth: int,
        epoch: int,
        members: Callable[[], np.ndarray],
        admit: Callable[[np.ndarray], np.ndarray],
        key: Key,
        size: int,
        merge: Merge | None = None,
    ) -> np.ndarray:
        """The best ``k`` of list ``name`` by ``key`` (descending; ties: lower index first):
        ``members()`` gives every candidate, sorted (only called for a full rebuild), ``admit``
        masks grown items that belong to the list, ``size`` is the member count (a merge longer
        than that is a rebuild instead). ``merge``: what ``_merged`` does with ``key`` and
        ``admit`` (a list's items, the grown items, its depth -> its new items), in one
        compiled call where the owner has one."""
        entry = self._lists.get(name)
        end = self._base + self._used
        if entry is None or entry.epoch != epoch or entry.depth < k or entry.mark < self._base:
            want = max(k, depth)
            entry = _List(best(members(), want, key), want, end, epoch)
            self._lists[name] = entry
        elif entry.mark < end:
            if end - entry.mark > max(size, REBUILD_SPAN):
                entry.items = best(members(), entry.depth, key)
            else:
                grown = self._log[entry.mark - self._base : end - self._base]
                entry.items = (
                    merge(entry.items, grown, entry.depth)
                    if merge is not None
                    else _merged(entry, grown, admit, key)
                )
            entry.mark = end
        return entry.items[:k]


def _merged(
    entry: _List, grown: np.ndarray, admit: Callable[[np.ndarray], np.ndarray], key: Key
) -> np.ndarray:
    """A list brought up to date with the log entries ``grown`` (repeats allowed): the best of
    its members and the grown items ``admit`` takes, by their current keys (``merge_top``).
    Within an epoch members stay admitted and keys only grow, so this equals a rebuild. Only
    a grown item at or above a full list's lowest key can enter or reorder it: a long merge
    drops the others before ``admit`` runs."""
    items = entry.items
    item_keys, grown_keys = key(items), key(grown)
    if grown.size > SMALL and items.size >= entry.depth:
        reach = grown_keys >= item_keys.min()
        grown, grown_keys = grown[reach], grown_keys[reach]
    return merge_top(items, item_keys, grown, grown_keys, admit(grown), entry.depth)


def best(cands: np.ndarray, k: int, key: Key) -> np.ndarray:
    """The best ``k`` of ``cands`` (sorted by index) in one total order: ``key`` descending,
    then index ascending. A total order matters: a partition picks among equal keys
    arbitrarily, so a list merged from grown items and one rebuilt from scratch could keep
    different tied items."""
    values = key(cands)
    if cands.size > k:
        kth = np.partition(values, cands.size - k)[cands.size - k]  # the k-th largest
        above = np.flatnonzero(values > kth)
        tied = np.flatnonzero(values == kth)[: k - above.size]
        pick = np.concatenate([above, tied])
    else:
        pick = np.arange(cands.size)
    return cands[pick[np.lexsort((pick, -values[pick]))]]


#: what ``PopularTops`` needs of the catalog: popularity, tiebreak, available, deleted and
#: feature_ids (the catalog's arrays, passed at each read: they are reallocated as it grows)
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class PopularTops:
    """Exact top lists by popularity (``Catalog.popular``, ``top_for_feature``), kept like
    ``GrowingTops``' lists (same log, same rebuild rule, same order) but in one table, a row a
    list, so a ranking reads all its liked features' lists in one compiled call
    (``top_kernels.popular_tops``): the keys, who may enter, the merge and the rows' first
    ``k`` all computed there. Per list and per call, the Python route (closures, two numpy
    gathers for the keys, an admit mask, a merge call) cost ~8 µs for a merge of a couple of
    log entries into 50 items, the merge itself a fraction of that. Lists are named by ints
    >= 0 (a feature id; 0 for the one overall list), get a row at their first read, and share
    one depth and one epoch."""

    def __init__(self, log: GrowingTops, depth: int, by_feature: bool) -> None:
        self._log = log
        self._by_feature = by_feature
        self._epoch: int | None = None
        self._rows = np.zeros((0, depth), dtype=np.int64)  # row r: a list's members, best first
        self._counts = np.zeros(0, dtype=np.int64)  # how many of row r's slots hold members
        self._marks = np.zeros(0, dtype=np.int64)  # log position row r is up to date with
        self._sizes = np.zeros(0, dtype=np.int64)  # row r's member count at its rebuild
        #: list name -> its row (-1: none yet), and row -> name. Rows are handed out in the
        #: order lists are first read, so the table holds the features rankings read, not one
        #: row per id up to the largest (~400 B a row: a 4M-feature vocabulary would be 1.6 GB)
        self._slots = np.zeros(0, dtype=np.int64)
        self._names = np.zeros(0, dtype=np.int64)
        self._used = 0

    def read(
        self,
        names: np.ndarray,
        k: int,
        epoch: int,
        arrays: Arrays,
        members: Callable[[int], np.ndarray],
    ) -> np.ndarray:
        """The best ``k`` of each list in ``names`` (int64), one list after the other, by
        ``popularity + tiebreak`` descending, ties by lower index, among the eligible members:
        ``members(name)`` gives all of a list's members (distinct, any order), asked only for
        a rebuild. A row keeps their count for the rebuild rule: within an epoch membership
        does not change (whatever changes it starts a new epoch)."""
        depth = self._rows.shape[1]
        if epoch != self._epoch or k > depth:  # every row is rebuilt at its next read
            self._epoch = epoch
            if k > depth:
                self._rows = np.zeros((self._rows.shape[0], k), dtype=np.int64)
            self._marks.fill(-1)
        log = self._log
        end = log._base + log._used
        while True:
            out, stale = popular_tops(
                self._rows,
                self._counts,
                self._marks,
                self._sizes,
                self._slots,
                self._names,
                names,
                self._by_feature,
                k,
                log._log,
                log._base,
                end,
                REBUILD_SPAN,
                *arrays,
            )
            if stale < 0:
                return out
            self._rebuild(int(names[stale]), end, arrays, members)

    def invalidate(self, names: Iterable[int]) -> None:
        """Lists ``names`` are rebuilt at their next read: one of their items left or joined
        them, or its score went down, which a merge cannot follow. The other lists stay as
        they are: an item that is not one of their members cannot change them."""
        slots, marks = self._slots, self._marks
        for name in names:
            row = int(slots[name]) if 0 <= name < slots.size else -1
            if row >= 0:
                marks[row] = -1

    def _rebuild(
        self, name: int, end: int, arrays: Arrays, members: Callable[[int], np.ndarray]
    ) -> None:
        """List ``name`` rebuilt from all its members (``top_kernels.rebuild_row``), in a row
        of its own from its first read on."""
        if name < 0:
            raise IndexError(f"list name {name} is negative")
        rows, counts, marks, sizes, row = self._row_for(name)
        fid = name if self._by_feature else -1
        rebuild_row(rows, counts, marks, sizes, row, members(name), end, fid, *arrays)

    def _row_for(self, name: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """The table's arrays and list ``name``'s row, given the next free one if it has none
        (the name map and the rows each double when full)."""
        if name >= self._slots.size:
            more = max(name + 1, 2 * self._slots.size) - self._slots.size
            self._slots = np.concatenate([self._slots, np.full(more, -1, dtype=np.int64)])
        row = int(self._slots[name])
        if row < 0:
            row = self._used
            if row >= self._rows.shape[0]:
                grow = max(1, self._rows.shape[0])
                more_rows = np.zeros((grow, self._rows.shape[1]), dtype=np.int64)
                self._rows = np.concatenate([self._rows, more_rows])
                self._counts = np.concatenate([self._counts, np.zeros(grow, dtype=np.int64)])
                self._marks = np.concatenate([self._marks, np.full(grow, -1, dtype=np.int64)])
                self._sizes = np.concatenate([self._sizes, np.zeros(grow, dtype=np.int64)])
                self._names = np.concatenate([self._names, np.full(grow, -1, dtype=np.int64)])
            self._slots[name] = row
            self._names[row] = name
            self._used = row + 1
        return self._rows, self._counts, self._marks, self._sizes, row
