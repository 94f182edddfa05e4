"""What is popular *now*: interaction counts decayed on a few horizons (forward decay).

All-time popularity (``Catalog.popularity``) favours last year's hits; in shops where demand
moves (new releases, seasons) the recent counts say more. Which horizon matters is left to
the learned signal weights. Forward decay keeps an update O(1): an interaction at ``t`` adds
``w · exp((t − t0)/τ)``; every item shares the factor ``exp(−(now − t0)/τ)`` at read time, so
relative values need no per-item decay, and ``t0`` moves forward (rescaling) before overflow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numba
import numpy as np

from stream.domain.top_kernels import FEW, insert_few, merge_top
from stream.domain.top_lists import SMALL, GrowingTops

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
        if cands.size:  # (an empty read leaves the best unset, as it did)
            self.fill(cands, out)
        return out

    def fill(self, cands: np.ndarray, out: np.ndarray) -> None:
        """``values(cands)`` written into ``out`` (every cell: a signal block's trend columns),
        in one compiled pass (``_relative``): a mask, two gathers, two divisions and two
        masked writes in numpy cost ~5 µs a ranking, the copy into the block one more."""
        if out.shape != (cands.size, self.scores.shape[0]):  # no bounds checks in the kernel
            raise ValueError(f"trend values of shape {out.shape} for {cands.size} candidates")
        if self._best is None:
            self._best = self.scores.max(axis=1)
        _relative(self.scores, self._best, cands.astype(np.int64, copy=False), out)

    def _hot_key(self, items: np.ndarray) -> np.ndarray:
        return self.scores[0, items]

    def _hot_merge(self, items: np.ndarray, grown: np.ndarray, depth: int) -> np.ndarray:
        return _merged_hot(items, grown, self.scores[0], depth, SMALL)

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
            self._hot_merge,
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


@numba.njit(cache=True, nogil=True)
def _relative(scores: np.ndarray, best: np.ndarray, cands: np.ndarray, out: np.ndarray) -> None:
    """Every cell of ``out``: ``scores[row, cands[i]] / best[row]`` where ``best[row] > 0``
    and the candidate has a count (an index past ``scores``: none), else 0.0, as
    ``Trending.values``' numpy did it (the same IEEE division; a negative index counts from
    the end, as numpy's)."""
    size = scores.shape[1]
    for row in range(scores.shape[0]):
        top = best[row]
        for i in range(cands.size):
            c = cands[i]
            if c < 0:
                c += size
                if c < 0:
                    raise IndexError("candidate index out of range")
            out[i, row] = scores[row, c] / top if top > 0 and c < size else 0.0


@numba.njit(cache=True, nogil=True)
def _merged_hot(
    items: np.ndarray, grown: np.ndarray, row: np.ndarray, depth: int, small: int
) -> np.ndarray:
    """``top_lists._merged`` for the hot list (key ``row[item]``, admitted when > 0) in one
    call: the keys, the drop of a long merge's grown items below a full list's lowest key
    (with numpy's ``min``: NaN if any is), the admit test and the merge. Through numpy
    gathers, two closures and ``merge_top`` a read cost ~20 µs, ~10 of them the two sorts
    of ``merge_top`` for one grown item: a few admitted items (``FEW``, no NaN key) are
    inserted instead (``top_kernels.insert_few``, shared with the popular lists: members that
    did not grow keep their keys, so their order, within an epoch)."""
    n, size = items.size, row.size
    item_keys = np.empty(n)
    lowest = np.inf
    for i in range(n):
        v = row[items[i]]
        item_keys[i] = v
        if lowest == lowest and (v != v or v < lowest):  # a NaN, once met, stays
            lowest = v
    grown_keys = np.empty(grown.size)
    for j in range(grown.size):
        if grown[j] >= size or grown[j] < -size:
            raise IndexError("grown item index out of range")
        grown_keys[j] = row[grown[j]]
    if grown.size > small and n >= depth:
        reach = grown_keys >= lowest
        grown, grown_keys = grown[reach], grown_keys[reach]
    floor = lowest if n >= depth and n > 0 else -np.inf  # ``merge_top``'s
    picked = np.empty(grown.size, dtype=np.int64)
    keys = np.empty(grown.size)
    m = 0
    for j in range(grown.size):
        if grown_keys[j] > 0 and not grown_keys[j] < floor:
            picked[m], keys[m] = grown[j], grown_keys[j]
            m += 1
    if m > FEW or lowest != lowest:
        return merge_top(items, item_keys, grown, grown_keys, grown_keys > 0, depth)
    out = np.empty(depth, dtype=np.int64)
    return out[: insert_few(items, item_keys, picked, keys, m, out)]


def warm_up() -> float:
    """Compile (or load from the cache) the trend kernels with the types ranking passes (the
    trend columns are a view of the signal block: a non-contiguous layout of their own);
    returns the seconds it took. A worker calls it with the other kernels' ``warm_up``."""
    started = time.perf_counter()
    items = np.zeros(2, dtype=np.int64)
    scores = np.ones((2, 2))
    _relative(scores, np.ones(2), items, np.zeros((2, 2)))
    _relative(scores, np.ones(2), items, np.zeros((2, 4))[:, 1:3])
    _merged_hot(items[:1], items, scores[0], 1, SMALL)
    return time.perf_counter() - started
