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
score or change who may be listed (stock, deletes, catalog edits, a trending rebase) starts a
new ``epoch``, and lists are rebuilt in full.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from stream.domain.top_kernels import merge_top

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
    ) -> np.ndarray:
        """The best ``k`` of list ``name`` by ``key`` (descending; ties: lower index first):
        ``members()`` gives every candidate, sorted (only called for a full rebuild), ``admit``
        masks grown items that belong to the list, ``size`` is the member count (a merge longer
        than that is a rebuild instead)."""
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
                entry.items = _merged(entry, grown, admit, key)
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
