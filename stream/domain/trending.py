"""What is popular *now*: interaction counts decayed on a few horizons (forward decay).

All-time popularity (``Catalog.popularity``) favours last year's hits; in shops where demand
moves (new releases, seasons) the recent counts say more. Which horizon matters is left to
the learned signal weights. Forward decay keeps an update O(1): an interaction at ``t`` adds
``w · exp((t − t0)/τ)``; every item shares the factor ``exp(−(now − t0)/τ)`` at read time, so
relative values need no per-item decay, and ``t0`` moves forward (rescaling) before overflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from stream.domain.top_lists import GrowingTops

DAY_MS = 24 * 3600 * 1000.0
#: the horizons (τ) of ``signals.SIGNALS``' trend columns
HORIZONS_MS = (1 * DAY_MS, 7 * DAY_MS)
_MAX_EXPONENT = 50.0


class Trending:
    """Per-item decayed counts on each horizon, indexed like the catalog."""

    def __init__(self, capacity: int = 1024, horizons_ms: tuple[float, ...] = HORIZONS_MS):
        self.horizons_ms = horizons_ms
        self.scores = np.zeros((len(horizons_ms), capacity), dtype=np.float64)
        self.t0: float | None = None
        #: the hottest items, exact at every read (``stream.domain.top_lists``); a rebase
        #: rescales every count, so it starts a new epoch
        self._tops = GrowingTops()
        self._rebases = 0
        #: each horizon's largest count, kept as counts grow (None: recompute at the next read),
        #: so ``values`` does not scan the whole catalog per burst
        self._best: np.ndarray | None = None

    def observe(self, indexes: list[int], weight: float, ts: float) -> None:
        if not indexes:
            return
        need = max(indexes) + 1
        if need > self.scores.shape[1]:
            grown = np.zeros((self.scores.shape[0], max(need, 2 * self.scores.shape[1])))
            grown[:, : self.scores.shape[1]] = self.scores
            self.scores = grown
        if self.t0 is None:
            self.t0 = ts
        if (ts - self.t0) / min(self.horizons_ms) > _MAX_EXPONENT:
            self._rebase(ts)
        scores = self.scores
        for row, tau in enumerate(self.horizons_ms):
            # element by element, in order, as ``np.add.at`` adds (duplicates included): an
            # event touches one or a few items, where a ufunc call costs ~10x a scalar add
            add = weight * math.exp((ts - self.t0) / tau)
            line = scores[row]
            for i in indexes:
                line[i] += add
        if weight > 0:
            self._tops.grew(indexes)
            if self._best is not None:
                grown = scores[:, indexes[0]] if len(indexes) == 1 else scores[:, indexes].max(1)
                self._best = np.maximum(self._best, grown)
        else:
            self._rebases += 1  # a count went down: rebuild the top list
            self._best = None

    def _rebase(self, ts: float) -> None:
        assert self.t0 is not None
        for row, tau in enumerate(self.horizons_ms):
            self.scores[row] *= math.exp(-(ts - self.t0) / tau)
        self.t0 = ts
        self._rebases += 1
        self._best = None

    def restore(self, t0: float | None, indexes: np.ndarray, scores: np.ndarray) -> None:
        """Counts from a snapshot (``stream.domain.learned_snapshot``): ``scores[:, k]`` is
        item ``indexes[k]``'s, relative to ``t0`` as stored (forward decay goes on from it)."""
        need = int(indexes.max()) + 1 if indexes.size else 0
        if need > self.scores.shape[1]:
            grown = np.zeros((self.scores.shape[0], max(need, self.scores.shape[1])))
            grown[:, : self.scores.shape[1]] = self.scores
            self.scores = grown
        self.scores[:, indexes] = scores
        self.t0 = t0
        self._rebases += 1  # a new epoch: the hot list is rebuilt
        self._best = None

    def values(self, cands: np.ndarray) -> np.ndarray:
        """(len(cands), horizons): each horizon's count relative to its current best item."""
        out = np.zeros((cands.size, len(self.horizons_ms)))
        if cands.size == 0:
            return out
        inside = cands < self.scores.shape[1]
        if self._best is None:
            self._best = self.scores.max(axis=1)
        for row in range(len(self.horizons_ms)):
            top = float(self._best[row])
            if top > 0:
                out[inside, row] = self.scores[row, cands[inside]] / top
        return out

    def _hot_key(self, items: np.ndarray) -> np.ndarray:
        return self.scores[0, items]

    def top(self, k: int) -> np.ndarray:
        """Item indexes that are hottest on the shortest horizon (candidates), best first."""
        row = self.scores[0]
        return self._tops.top(
            None,
            k,
            100,
            self._rebases,
            lambda: np.flatnonzero(row > 0),
            lambda grown: self.scores[0, grown] > 0,
            self._hot_key,
            row.size,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizons_ms": list(self.horizons_ms),
            "t0": self.t0,
            "scores": self.scores.tolist(),
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Trending:
        out = cls(horizons_ms=tuple(body["horizons_ms"]))
        out.scores = np.asarray(body["scores"], dtype=np.float64)
        out.t0 = body["t0"]
        return out
