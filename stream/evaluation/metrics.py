"""Ranking metrics for the prequential evaluator, and their per-method/segment aggregation.

All metrics use binary relevance: an item is relevant iff it is in ``targets``. The ranked
list is what a method would have *shown*, best first, so it is cut at ``k`` before scoring.
Duplicates in ``ranked`` count once, at their first occurrence; a later repeat still occupies
its slot (it would take screen space) but earns no gain and is not a second hit. This keeps a
method from gaining anything by repeating an item.

``reciprocal_rank`` is cut at ``k`` too (a first hit below rank ``k`` scores 0), so its mean is
MRR@k, consistent with the other @k metrics: an item the user never saw cannot have helped.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

#: Users with fewer prior events than this are "cold".
COLD_MAX = 5
#: Users with fewer prior events than this (and at least ``COLD_MAX``) are "warm"; else "heavy".
WARM_MAX = 20
#: Pseudo-segment that aggregates every segment of a method.
ALL = "all"
DEFAULT_SEGMENTS: tuple[str, ...] = ("cold", "warm", "heavy")


def segment_for(prior_events: int) -> str:
    """Activity segment of a user by events seen before the target, so results split by history."""
    if prior_events < COLD_MAX:
        return "cold"
    if prior_events < WARM_MAX:
        return "warm"
    return "heavy"


def _top_k(ranked: Sequence[str], k: int) -> list[tuple[int, str]]:
    """(1-based rank, item) of the distinct items in the first ``k`` slots; repeats keep no gain."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for rank, item in enumerate(ranked[:k], start=1):
        if item not in seen:
            seen.add(item)
            out.append((rank, item))
    return out


def _scores(
    top: list[tuple[int, str]], targets: Collection[str], k: int
) -> tuple[float, float, float, float]:
    """(recall, ndcg, rr, hit) from a deduplicated top-k in one pass, for the accumulator."""
    n_targets = len(targets)
    if n_targets == 0:
        return 0.0, 0.0, 0.0, 0.0
    hits = 0
    dcg = 0.0
    rr = 0.0
    for rank, item in top:
        if item in targets:
            hits += 1
            dcg += 1.0 / math.log2(rank + 1)
            if rr == 0.0:
                rr = 1.0 / rank
    idcg = sum(1.0 / math.log2(r + 1) for r in range(1, min(n_targets, k) + 1))
    return hits / n_targets, dcg / idcg, rr, 1.0 if hits else 0.0


def recall_at_k(ranked: Sequence[str], targets: Collection[str], k: int = 10) -> float:
    """Share of the relevant items that appear in the top ``k`` (0 when there are no targets)."""
    return _scores(_top_k(ranked, k), targets, k)[0]


def ndcg_at_k(ranked: Sequence[str], targets: Collection[str], k: int = 10) -> float:
    """Binary-gain NDCG@k: DCG over hits at ranks 1..k, over IDCG of min(|targets|, k) hits."""
    return _scores(_top_k(ranked, k), targets, k)[1]


def reciprocal_rank(ranked: Sequence[str], targets: Collection[str], k: int = 10) -> float:
    """1/rank of the first hit within the top ``k`` (0 if none); its mean is MRR@k."""
    return _scores(_top_k(ranked, k), targets, k)[2]


def hit_at_k(ranked: Sequence[str], targets: Collection[str], k: int = 10) -> float:
    """1.0 if any relevant item is in the top ``k``, else 0.0 (mean is the hit rate)."""
    return _scores(_top_k(ranked, k), targets, k)[3]


@dataclass
class _Cell:
    """Running sums for one (method, segment): means need only sums and a count."""

    recall: float = 0.0
    ndcg: float = 0.0
    rr: float = 0.0
    hit: float = 0.0
    n: int = 0
    recommended: Counter[str] = field(default_factory=Counter)

    def add(self, scores: tuple[float, float, float, float], items: Sequence[str]) -> None:
        recall, ndcg, rr, hit = scores
        self.recall += recall
        self.ndcg += ndcg
        self.rr += rr
        self.hit += hit
        self.n += 1
        self.recommended.update(items)


class MetricAccumulator:
    """Accumulates metrics per (method, segment) and per (method, "all") over a replay.

    Each ``add`` also counts the distinct top-k items shown, which ``summary`` turns into
    catalog coverage and novelty. Segments must be one of ``segments`` (a typo would otherwise
    silently become its own segment).
    """

    def __init__(self, k: int = 10, segments: Sequence[str] = DEFAULT_SEGMENTS) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if ALL in segments:
            raise ValueError(f"{ALL!r} is computed, not a segment")
        self.k = k
        self.segments: tuple[str, ...] = tuple(segments)
        self._cells: dict[str, dict[str, _Cell]] = {}

    @property
    def methods(self) -> list[str]:
        """Methods in the order they were first added."""
        return list(self._cells)

    def add(
        self, method: str, segment: str, ranked: Sequence[str], targets: Collection[str]
    ) -> None:
        """Score one shown list against what the user bought, under its segment and "all"."""
        if segment not in self.segments:
            raise ValueError(f"unknown segment {segment!r}; expected one of {self.segments}")
        top = _top_k(ranked, self.k)
        scores = _scores(top, targets, self.k)
        items = [item for _, item in top]
        cells = self._cells.setdefault(method, {})
        for key in (segment, ALL):
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = _Cell()
            cell.add(scores, items)

    def summary(
        self, catalog_size: int, popularity: Mapping[str, float]
    ) -> dict[str, dict[str, dict[str, float]]]:
        """Mean metrics plus coverage and novelty per method and segment (empty segments omitted).

        coverage = distinct items shown in any top-k / ``catalog_size``.
        novelty = mean over every shown top-k slot (distinct within a list) of -log2 p(i), with
        p(i) = (popularity[i] + 1) / (sum(popularity) + catalog_size): add-one smoothing, so items
        never bought get a finite, high self-information instead of infinity. 0 if nothing shown.
        """
        if catalog_size < 1:
            raise ValueError(f"catalog_size must be >= 1, got {catalog_size}")
        denom = float(sum(popularity.values())) + catalog_size
        k = self.k
        out: dict[str, dict[str, dict[str, float]]] = {}
        for method, cells in self._cells.items():
            per_segment: dict[str, dict[str, float]] = {}
            for segment in (*self.segments, ALL):
                cell = cells.get(segment)
                if cell is None or cell.n == 0:
                    continue
                shown = sum(cell.recommended.values())
                info = sum(
                    count * -math.log2((popularity.get(item, 0.0) + 1.0) / denom)
                    for item, count in cell.recommended.items()
                )
                per_segment[segment] = {
                    f"recall@{k}": cell.recall / cell.n,
                    f"ndcg@{k}": cell.ndcg / cell.n,
                    f"mrr@{k}": cell.rr / cell.n,
                    f"hit_rate@{k}": cell.hit / cell.n,
                    "coverage": len(cell.recommended) / catalog_size,
                    "novelty": info / shown if shown else 0.0,
                    "n": cell.n,
                }
            out[method] = per_segment
        return out
