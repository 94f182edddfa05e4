"""Item→item relations for the query set: online co-occurrence until the Pfeed lookup exists.

Any source of relations implements ``RelatedItems.related(idx) -> (targets, strengths)``, so the
ONNX/Qdrant query→target lookup of the next stage replaces this without touching ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from stream.domain.partner_rows import PartnerRows
from stream.domain.relation_kernels import cooc_rows
from stream.domain.relation_rows import (
    EMPTY_ROWS,
    Query,
    Rows,
    strongest_first,
    top_k_per_row,
)

_NO_TIE = np.zeros(0, dtype=np.float64)


class RelatedItems(Protocol):
    def related(self, idx: int, role: str = "view") -> tuple[np.ndarray, np.ndarray]:
        """Target item indexes and strengths in [0, 1], strongest first."""
        ...


class CoOccurrence:
    """Bounded co-occurrence counts (baskets, view sessions) with cosine-normalised strength.

    Each item keeps at most ``max_neighbours`` partners; when it overflows, the weakest half
    is dropped, which bounds memory at O(items × max_neighbours). The observations themselves do
    not depend on how a user's topics interleave (``stream.domain.pairing``), and until a row
    overflows neither do the counts (sums); which weak partners a prune drops does depend on
    when it happens, and a correction for a dropped partner is ignored. With 256 (not 64)
    partners and ties broken by item (not by arrival) that churn stays below what the top rows
    show (the kill test's 3,180 events prune no row; probe lists overlap 0.39 with 64).
    """

    def __init__(self, max_neighbours: int = 256, top_k: int = 40) -> None:
        self.max_neighbours = max_neighbours
        self.top_k = top_k
        #: per item, its partners and pair counts (``PartnerRows``: arrays, so a read of a whole
        #: query set is a view per row, not a walk over dict entries)
        self.rows = PartnerRows()
        self.counts: dict[int, float] = {}
        self.frozen = False
        #: tiny per-item constants (``Catalog.tiebreak``): equal counts and strengths are common
        #: (event weights are few small numbers) and would otherwise be decided by arrival order,
        #: so two workers with the same observations in another order would keep other partners
        self.tiebreak: Callable[[np.ndarray], np.ndarray] | None = None
        #: read side (``related_many``): the counts as one array, refreshed from the items
        #: whose count changed since the last read (``_dirty``), so every read is exact: it
        #: depends on the counts, never on when it was made
        self._dirty: set[int] = set()
        self._count_of = np.ones(0, dtype=np.float64)

    def observe(
        self, items: Sequence[int], context: Sequence[int] = (), weight: float = 1.0
    ) -> None:
        """Count pairs inside ``items`` and between ``items`` and recent ``context`` items."""
        if self.frozen:
            return
        unique = list(dict.fromkeys(items))[:30]
        for i in unique:
            self.counts[i] = self.counts.get(i, 0.0) + weight
        self._dirty.update(unique)  # read side: these counts changed
        partners = list(dict.fromkeys([*unique, *context]))[:40]
        for i in unique:
            for j in partners:
                if i != j:
                    self._add(i, j, weight)
                    self._add(j, i, weight)

    def observe_pairs(self, pairs: Sequence[tuple[int, int, float]]) -> None:
        """Count pairs between an event and the user's other events (``stream.domain.pairing``:
        earlier → later, negative weights take back a pair a late event separated). Both
        directions are credited alike: the pairs come oriented so a directed lookup can use it."""
        if self.frozen:
            return
        for i, j, weight in pairs:
            if i != j:
                self._add(i, j, weight)
                self._add(j, i, weight)

    def _add(self, i: int, j: int, weight: float) -> None:
        rows = self.rows
        if weight < 0:  # a correction: take back what was counted, if the partner is still kept
            rows.touch(i)
            have = rows.get(i, j)
            if have is None:
                return
            left = have + weight
            if left <= 1e-9:
                rows.remove(i, j)
            else:
                rows.set(i, j, left)
            return
        if rows.add(i, j, weight) > self.max_neighbours:
            self._prune(i, self.max_neighbours // 2)

    def _prune(self, i: int, keep: int) -> None:
        """Keep the ``keep`` partners with the largest counts, ties broken by item, not by
        order, in that order."""
        keys, counts = self.rows.arrays(i)
        rank = counts + (self.tiebreak(keys) if self.tiebreak is not None else 0.0)
        top = np.argsort(-rank, kind="stable")[:keep]
        self.rows.replace(i, zip(keys[top].tolist(), counts[top].tolist(), strict=True))

    @property
    def pairs(self) -> dict[int, dict[int, float]]:
        """Every row as ``{item: {partner: count}}`` in the row's order (a copy: snapshots,
        tests; ranking reads ``rows``)."""
        return {i: self.rows.as_dict(i) for i in self.rows.items()}

    @pairs.setter
    def pairs(self, pairs: dict[int, dict[int, float]]) -> None:
        self.rows = PartnerRows()
        for i, row in pairs.items():
            self.rows.replace(i, row.items())

    def restore(self, counts: dict[int, float], pairs: dict[int, dict[int, float]]) -> None:
        """Counts and rows from a snapshot (``stream.domain.learned_snapshot``), as kept."""
        self.counts = counts
        self.pairs = pairs
        self._dirty.update(counts)  # the read side refreshes these counts at its next read

    def related(self, idx: int, role: str = "view") -> tuple[np.ndarray, np.ndarray]:
        """The ``top_k`` partners by cosine-normalised strength, strongest first (ordered
        before the cap at 1, so partners above it keep their order)."""
        targets, strengths, _ = self._rows([(idx, role)], cap=False)
        targets, strengths = strongest_first(targets, strengths)
        return targets, np.minimum(1.0, strengths)

    def related_many(self, queries: Sequence[Query]) -> Rows:
        """Every query's row at once (see ``stream.domain.relation_rows``): strength =
        pair / sqrt(count_i · max(count_j, 1)) (+ tie-break), the ``top_k`` per row, capped at 1."""
        return self._rows(queries, cap=True)

    def _rows(self, queries: Sequence[Query], cap: bool) -> Rows:
        """``related_many``, capped at 1 or not (``related`` orders before the cap)."""
        self._sync()
        # every row is read as it is now (no per-row cache: the query items' rows change with
        # nearly every event of their user, 58 % of rows read on the quick bench had changed
        # since their last read); ``PartnerRows`` keeps them in one arena, so this is one
        # compiled gather, not a walk over every entry (``stream.domain.partner_rows``)
        items = [q for q, _ in queries]
        keys, pair, sizes, top = self.rows.gather(items)
        if not keys.size:
            return EMPTY_ROWS
        mine = np.array(items, dtype=np.int64)
        count_of = self._counts_upto(max(top, int(max(items))) + 1)
        tie = _NO_TIE if self.tiebreak is None else np.asarray(self.tiebreak(keys), np.float64)
        # one compiled pass (``relation_kernels``); the numpy code below stays the
        # specification, and decides which of tied entries at a row's k-th strongest stay
        got = cooc_rows(keys, pair, sizes, mine, count_of, tie, self.top_k, cap)
        if got[3]:
            return got[0], got[1], got[2]
        row_of = np.repeat(np.arange(len(items), dtype=np.int64), sizes)
        strength = pair / np.sqrt(count_of[mine][row_of] * np.maximum(count_of[keys], 1.0))
        if tie.size:
            strength = strength + tie
        keep = top_k_per_row(strength, sizes, self.top_k)
        if keep is not None:
            keys, strength, row_of = keys[keep], strength[keep], row_of[keep]
        return keys, np.minimum(1.0, strength) if cap else strength, row_of

    def _sync(self) -> None:
        """Bring the read side up to date with the writes since the last read."""
        dirty = self._dirty
        if not dirty:
            return
        changed = list(dirty)
        dirty.clear()
        counts = self.counts
        count_of = self._counts_upto(max(changed) + 1)
        count_of[changed] = [counts.get(i, 1.0) for i in changed]

    def _counts_upto(self, n: int) -> np.ndarray:
        """The counts array, grown to hold item ``n - 1`` (an item never counted reads 1.0)."""
        if n > self._count_of.size:
            grown = np.ones(max(n, 2 * self._count_of.size), dtype=np.float64)
            grown[: self._count_of.size] = self._count_of
            self._count_of = grown
        return self._count_of
