"""Item→item relations for the query set: online co-occurrence until the Pfeed lookup exists.

Any source of relations implements ``RelatedItems.related(idx) -> (targets, strengths)``, so the
ONNX/Qdrant query→target lookup of the next stage replaces this without touching ranking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


class RelatedItems(Protocol):
    def related(self, idx: int, role: str = "view") -> tuple[np.ndarray, np.ndarray]:
        """Target item indexes and strengths in [0, 1], strongest first."""
        ...


class CoOccurrence:
    """Bounded co-occurrence counts (baskets, view sessions) with cosine-normalised strength.

    Each item keeps at most ``max_neighbours`` partners; when it overflows, the weakest half
    is dropped, which bounds memory at O(items × max_neighbours).
    """

    def __init__(self, max_neighbours: int = 256, top_k: int = 40) -> None:
        self.max_neighbours = max_neighbours
        self.top_k = top_k
        self.pairs: dict[int, dict[int, float]] = {}
        self.counts: dict[int, float] = {}
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.frozen = False

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

    def _add(self, i: int, j: int, weight: float) -> None:
        row = self.pairs.get(i)
        if row is None:
            row = self.pairs[i] = {}
        row[j] = row.get(j, 0.0) + weight
        if len(row) > self.max_neighbours:
            keep = sorted(row.items(), key=lambda kv: -kv[1])[: self.max_neighbours // 2]
            self.pairs[i] = dict(keep)
        self._cache.pop(i, None)

    def related(self, idx: int, role: str = "view") -> tuple[np.ndarray, np.ndarray]:
        cached = self._cache.get(idx)
        if cached is not None:
            return cached
        row = self.pairs.get(idx)
        if not row:
            return _EMPTY
        ci = self.counts.get(idx, 1.0)
        scored = [
            (j, c / math.sqrt(ci * max(self.counts.get(j, 1.0), 1.0))) for j, c in row.items()
        ]
        scored.sort(key=lambda kv: -kv[1])
        top = scored[: self.top_k]
        out = (
            np.fromiter((j for j, _ in top), dtype=np.int64, count=len(top)),
            np.fromiter((min(1.0, s) for _, s in top), dtype=np.float64, count=len(top)),
        )
        self._cache[idx] = out
        return out
