"""Item→item relations for the query set: online co-occurrence until the Pfeed lookup exists.

Any source of relations implements ``RelatedItems.related(idx) -> (targets, strengths)``, so the
ONNX/Qdrant query→target lookup of the next stage replaces this without touching ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

#: see ``CoOccurrence.related``
STALE_SHARE = 0.05
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


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
        self.pairs: dict[int, dict[int, float]] = {}
        self.counts: dict[int, float] = {}
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._stale: dict[int, float] = {}  # pair weight added to a cached row since cached
        self.frozen = False
        #: tiny per-item constants (``Catalog.tiebreak``): equal counts and strengths are common
        #: (event weights are few small numbers) and would otherwise be decided by arrival order,
        #: so two workers with the same observations in another order would keep other partners
        self.tiebreak: Callable[[np.ndarray], np.ndarray] | None = None

    def observe(
        self, items: Sequence[int], context: Sequence[int] = (), weight: float = 1.0
    ) -> None:
        """Count pairs inside ``items`` and between ``items`` and recent ``context`` items."""
        if self.frozen:
            return
        unique = list(dict.fromkeys(items))[:30]
        for i in unique:
            self.counts[i] = self.counts.get(i, 0.0) + weight
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
        row = self.pairs.get(i)
        if row is None:
            row = self.pairs[i] = {}
        if weight < 0:  # a correction: take back what was counted, if the partner is still kept
            if j not in row:
                return
            left = row[j] + weight
            if left <= 1e-9:
                del row[j]
            else:
                row[j] = left
            if i in self._cache:
                self._stale[i] = self._stale.get(i, 0.0) - weight
            return
        row[j] = row.get(j, 0.0) + weight
        if len(row) > self.max_neighbours:
            self.pairs[i] = self._strongest(row, self.max_neighbours // 2)
            self._cache.pop(i, None)
        elif i in self._cache:
            self._stale[i] = self._stale.get(i, 0.0) + weight

    def _strongest(self, row: dict[int, float], keep: int) -> dict[int, float]:
        """The ``keep`` partners with the largest counts, ties broken by item, not by order."""
        keys = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
        counts = np.fromiter(row.values(), dtype=np.float64, count=len(row))
        rank = counts + (self.tiebreak(keys) if self.tiebreak is not None else 0.0)
        top = np.argsort(-rank, kind="stable")[:keep]
        return {int(keys[t]): float(counts[t]) for t in top}

    def related(self, idx: int, role: str = "view") -> tuple[np.ndarray, np.ndarray]:
        cached = self._cache.get(idx)
        # a popular item's neighbours barely move per event: re-sorting its row each time it
        # is queried dominated ranking; recompute once the new pair weight is 5 % of its count
        if cached is not None and self._stale.get(idx, 0.0) <= STALE_SHARE * self.counts.get(
            idx, 0.0
        ):
            return cached
        self._stale.pop(idx, None)
        row = self.pairs.get(idx)
        if not row:
            return _EMPTY
        ci = self.counts.get(idx, 1.0)
        keys = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
        pair = np.fromiter(row.values(), dtype=np.float64, count=len(row))
        counts = self.counts
        their = np.fromiter((counts.get(j, 1.0) for j in row), dtype=np.float64, count=len(row))
        strength = pair / np.sqrt(ci * np.maximum(their, 1.0))
        if self.tiebreak is not None:
            strength = strength + self.tiebreak(keys)
        if strength.size > self.top_k:
            part = np.argpartition(-strength, self.top_k - 1)[: self.top_k]
        else:
            part = np.arange(strength.size)
        order = part[np.argsort(-strength[part], kind="stable")]
        out = (keys[order], np.minimum(1.0, strength[order]))
        self._cache[idx] = out
        return out
