"""Exact top lists of a score that only grows, kept up to date from the items that grew.

Candidate pools read "the most popular items" (overall, per liked feature, trending) on every
burst. Recomputing them from the whole catalog each time costs a partition over every item;
the old caches instead refreshed every 256 interactions, so what a worker ranked depended on
*when* it last refreshed — two workers with the same learned state could rank one user
differently. Here a list is exact at every read and cheap to keep so: popularity (and the
forward-decayed trending counts) only grow, so an item outside the top ``depth`` can enter it
only by growing itself. Each list therefore remembers the position in a log of grown items
where it was last brought up to date, and a read merges the items grown since (a handful per
burst) into it. Anything that can shrink a score or change who may be listed (stock, deletes,
catalog edits, a trending rebase) starts a new ``epoch``, and lists are rebuilt in full.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np

from stream.domain.sorted_sets import sorted_unique

#: the log is dropped past this many entries; lists older than it are rebuilt in full
MAX_LOG = 1 << 16

#: a merge of at most this many grown items runs in Python (see ``_List.order``): a burst grows
#: a handful, where each numpy call (key, partition, lexsort over ~100 members) costs µs
SMALL = 64

#: item indexes -> their scores (what a list ranks by, descending)
Key = Callable[[np.ndarray], np.ndarray]


@dataclass
class _List:
    items: np.ndarray  # the top ``depth`` members, best first
    depth: int
    mark: int  # log position it is up to date with
    epoch: int
    #: the members as ``(-key, index)`` ascending (the list's order), built on the first small
    #: merge and kept by the small merges; None once a numpy merge or rebuild replaced ``items``
    order: list[tuple[float, int]] | None = None
    #: member index -> its ``-key`` in ``order`` (to find and move a member that grew)
    negkey: dict[int, float] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)  # the indexes of ``order``


class GrowingTops:
    """Named exact top lists over one growing score (see the module docstring)."""

    def __init__(self) -> None:
        #: the log, an int64 buffer of ``MAX_LOG`` slots (its first ``_used`` hold entries), so
        #: a read slices it instead of converting a Python list of the items grown since
        self._log = np.zeros(MAX_LOG, dtype=np.int64)
        self._used = 0
        self._base = 0  # log position of ``_log[0]``
        self._lists: dict[Hashable, _List] = {}
        #: the distinct items grown in the log since one position (lists read in one burst
        #: usually share it): (from, to, items)
        self._since: tuple[int, int, np.ndarray] = (0, 0, np.zeros(0, dtype=np.int64))
        #: the items grown in the log between two positions with their ``-key`` (one pair per
        #: item), for one epoch and key: the lists read in one burst share them
        self._keyed: tuple[int, int, int, Key | None, list[tuple[int, float]]] = (0, 0, 0, None, [])

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

    def _grown(self, mark: int, end: int) -> np.ndarray:
        if self._since[:2] != (mark, end):
            log = self._log[mark - self._base : end - self._base]
            self._since = (mark, end, sorted_unique(log))
        return self._since[2]

    def _grown_keys(self, mark: int, end: int, epoch: int, key: Key) -> list[tuple[int, float]]:
        """The distinct items grown in ``[mark, end)`` with their ``-key``, kept for the next
        list read over the same span. Within an epoch a key changes only with a log entry."""
        cached = self._keyed
        if cached[:3] != (mark, end, epoch) or cached[3] != key:
            log = self._log[mark - self._base : end - self._base]
            # a repeated item has one key: the dict keeps one of each
            pairs = dict(zip(log.tolist(), key(log).tolist(), strict=True))
            self._keyed = (mark, end, epoch, key, [(g, -kv) for g, kv in pairs.items()])
        return self._keyed[4]

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
            if end - entry.mark > max(size, 64):
                entry.items, entry.order = best(members(), entry.depth, key), None
            elif end - entry.mark <= SMALL:  # the log entries as they are: repeats are harmless
                _merge_small(entry, self._grown_keys(entry.mark, end, epoch, key), admit, key)
            else:
                entry.order = None
                self._merge(entry, self._grown(entry.mark, end), admit, key)
            entry.mark = end
        return entry.items[:k]

    @staticmethod
    def _merge(
        entry: _List, grown: np.ndarray, admit: Callable[[np.ndarray], np.ndarray], key: Key
    ) -> None:
        """Bring a list up to date with its grown items. Nothing changes unless one of them now
        reaches the lowest key in the list: an item in the list that grew is at or above it,
        an item that enters must be; a list shorter than its depth already holds every
        member, so only its order can change."""
        if grown.size == 0:
            return
        items = entry.items
        if items.size >= entry.depth:
            # a full list: only a grown item at or above its lowest key now (its members may
            # have grown past each other) can enter or reorder it; this test is cheaper than
            # ``admit``, so it goes first
            grown = grown[key(grown) >= key(items).min()]
            if grown.size == 0:
                return
        grown = grown[admit(grown)]
        if grown.size == 0:
            return
        entry.items = best(sorted_unique(np.concatenate([items, grown])), entry.depth, key)


def _merge_small(
    entry: _List,
    grown: list[tuple[int, float]],
    admit: Callable[[np.ndarray], np.ndarray],
    key: Key,
) -> None:
    """``_merge`` for a few grown items, in Python: the same total order (``key`` descending,
    then index), each member's key remembered so a read keys only the grown items. A member
    that grew moves up in place (members stay admitted within an epoch, and ``_merge`` keeps
    them whatever ``admit`` says); an outsider can enter only if it now sorts before the
    current last member (members only grow, so the last only moves up) and ``admit`` takes
    it; the list is then cut back to its depth."""
    fresh = entry.order is None  # built from the current keys: members that grew are in place
    order = _order_of(entry, key)
    ids, negkey = entry.ids, entry.negkey
    full = len(order) >= entry.depth
    moved: list[tuple[float, int]] = []
    outsiders: list[tuple[float, int]] = []
    for g, kv in grown:
        if g in negkey:
            if kv != negkey[g]:  # (a zero weight grows nothing)
                moved.append((kv, g))
        elif not full or (kv, g) < order[-1]:
            outsiders.append((kv, g))
    if outsiders:
        ok = admit(np.array([g for _, g in outsiders], dtype=np.int64)).tolist()
        outsiders = [t for t, yes in zip(outsiders, ok, strict=True) if yes]
    if not moved and not outsiders and not fresh:
        return
    for _, g in moved:
        at = bisect_left(order, (negkey[g], g))
        del order[at], ids[at]
    for kv, g in moved + outsiders:
        at = bisect_left(order, (kv, g))
        order.insert(at, (kv, g))
        ids.insert(at, g)
        negkey[g] = kv
    if len(order) > entry.depth:
        for g in ids[entry.depth :]:
            del negkey[g]
        del order[entry.depth :], ids[entry.depth :]
    entry.items = np.array(ids, dtype=np.int64)


def _order_of(entry: _List, key: Key) -> list[tuple[float, int]]:
    """``entry.order`` (with ``ids`` and ``negkey``), built from the members' current keys
    when a numpy merge or rebuild dropped it."""
    if entry.order is None:
        negated = (-key(entry.items)).tolist()
        entry.order = sorted(zip(negated, entry.items.tolist(), strict=True))
        entry.ids = [i for _, i in entry.order]
        entry.negkey = {i: k for k, i in entry.order}
    return entry.order


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
