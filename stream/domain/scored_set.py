"""One user's scored candidates, and each feed's list as a selection from them.

``score = signals · weights`` is computed once per user burst (a matrix-vector product over
candidates × signals); a feed is then a mask (deals, new, exclusions, removals by factor 0), a
vector of boost factors, its pins and its diversity. Reasons and score breakdowns are built for
the items shown only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.diversity import Caps, diversify
from stream.domain.diversity_kernel import capped_top, seen_last
from stream.domain.profile import UserProfile
from stream.domain.ranking_profile import FeedRules, RankingProfile
from stream.domain.reasons import GROUPS, ListContext, ReasonInput, explain_list
from stream.domain.scoring import (
    apply_factors,
    applying,
    boost_factors,
    excluded,
    masks_of,
    pin_positions,
)
from stream.domain.signals import SIGNALS, Signals

#: how signal columns group into what a reason talks about
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "affinity": ("affinity_session", "affinity_long"),
    "relation": ("relation", "relation_long", "relation_recent"),
    "popularity": ("popularity", "trend_day", "trend_week"),
    "repeat": ("repeat",),
    "view_return": ("view_return",),
    "query_match": ("query_match",),
    "price_fit": ("price_fit",),
    "freshness": ("freshness",),
    "search_filters": ("search_filters",),
}
assert tuple(REASON_GROUPS) == GROUPS  # the column order ``explain_list`` reads
_COLUMN = {name: i for i, name in enumerate(SIGNALS)}
#: how far down the score order a diversified list of k may look: the best
#: ``max(HEAD_PER_SLOT × k × max_per_category, HEAD_FLOOR)`` can make it, even with caps
#: skipping some
HEAD_PER_SLOT, HEAD_FLOOR = 4, 200
#: signals × reason groups, 1 where a signal belongs to a group
_GROUPS = np.array([[float(name in cols) for cols in REASON_GROUPS.values()] for name in SIGNALS])


@dataclass(slots=True)  # not frozen: a frozen init costs ~3x, and 20 are made per list
class RankedItem:
    item_id: str
    score: float
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "score": round(self.score, 6), "reasons": self.reasons}


@dataclass
class Selection:
    """A feed's list: positions into the candidates in list order, with final scores."""

    feed: str
    rules: FeedRules
    chosen: list[int]
    score: np.ndarray
    factors: np.ndarray
    pinned: frozenset[int]
    context: Mapping[str, str]


class ScoredSet:
    """One user's candidates with their weighted signal terms and base scores."""

    def __init__(self, sig: Signals, rp: RankingProfile, catalog: Catalog) -> None:
        self.sig = sig
        self.rp = rp
        self.weights = rp.signal_weights()
        self.terms = sig.values * self.weights
        self.catalog = catalog
        self.base = self.terms.sum(axis=1)
        self.masks = masks_of(catalog)
        self._brand: np.ndarray | None = None
        #: ``_capped``'s group rows, cap limits and exempt mask (the same for every feed)
        self._cap_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._plain: tuple[np.ndarray, np.ndarray] | None = None  # ``_unboosted``

    def feed_mask(self, feed: str, rules: FeedRules) -> np.ndarray:
        """Candidates this feed may show at all (before boosts remove any)."""
        cands = self.sig.cands
        if feed == "deals_for_you":
            keep = self.catalog.deal[cands]  # (a gather: already a copy)
        elif feed == "new_for_you":
            keep = self.catalog.new[cands]
        else:
            keep = np.ones(cands.size, dtype=bool)
        if rules.exclude_categories:
            keep &= ~excluded(rules, self.masks, cands)
        return keep

    def select(self, feed: str, context: Mapping[str, str]) -> Selection:
        """The feed's list: pins first, then unseen items (diversified), then seen ones."""
        rp, cands = self.rp, self.sig.cands
        rules = rp.rules_for(feed)
        keep = self.feed_mask(feed, rules)
        applied = applying(rules.factors, context)
        if applied:
            factors = boost_factors(applied, self.masks, cands, context)
            keep &= factors > 0
            # + a per-item constant from the id: ties rank alike on every worker (see Catalog)
            score = apply_factors(self.base, factors) + self.catalog.tiebreak[cands]
        else:  # no factor: ``apply_factors`` would give ``base`` itself (x·1 = x/1 = x)
            factors, score = self._unboosted()
        pins = [int(p) for p in pin_positions(rules, self.catalog, cands) if keep[p]][: rp.size]
        if pins:
            keep[pins] = False
        room = rp.size - len(pins)
        if rp.seen_placement == "after" and rp.mmr_lambda >= 1.0:  # one compiled pass
            rows, caps, exempt = self._caps()
            slot = HEAD_PER_SLOT * rp.max_per_category
            picked = seen_last(
                score, keep, self.sig.seen, rows, caps, exempt, room, rp.seen_tail, slot, HEAD_FLOOR
            )
            rest = picked.tolist()
        elif rp.seen_placement == "after":
            seen = self.sig.seen & keep
            tail = min(int(np.count_nonzero(seen)), rp.seen_tail)
            first = self._diversified(score, keep & ~seen, room - tail)
            rest = first + self._by_score(score, seen, room - len(first))
        else:
            rest = self._diversified(score, keep, room)
        return Selection(feed, rules, pins + rest, score, factors, frozenset(pins), context)

    def _unboosted(self) -> tuple[np.ndarray, np.ndarray]:
        """Factors (all 1) and scores of a feed no factor applies to, made once per scored
        set and shared by such feeds (read only, as every selection's arrays are)."""
        if self._plain is None:
            cands = self.sig.cands
            tied = self.base + self.catalog.tiebreak[cands]  # (see ``select``)
            self._plain = (np.ones(cands.size, dtype=np.float64), tied)
        return self._plain

    def _by_score(self, score: np.ndarray, mask: np.ndarray, k: int) -> list[int]:
        if k <= 0:
            return []
        pos = np.flatnonzero(mask)
        if pos.size == 0:
            return []
        return pos[np.argsort(-score[pos], kind="stable")][:k].tolist()

    def _diversified(self, score: np.ndarray, mask: np.ndarray, k: int) -> list[int]:
        rp = self.rp
        # only the best few hundred can make the list (``HEAD_PER_SLOT``)
        most = max(HEAD_PER_SLOT * k * rp.max_per_category, HEAD_FLOOR)
        if rp.mmr_lambda >= 1.0:  # caps only: one compiled pass (``diversity_kernel``)
            return self._capped(score, mask, k, most) if k > 0 else []
        pos = np.flatnonzero(mask)
        if k <= 0 or pos.size == 0:
            return []
        head = min(pos.size, most)
        if head < pos.size:
            pos = pos[np.argpartition(-score[pos], head - 1)[:head]]
        order = pos[np.argsort(-score[pos], kind="stable")]
        # the walk reads the ordered head only: gather its groups, exemptions and features,
        # not every candidate's, and diversify positions into ``order``
        shown = self.sig.cands[order]
        groups, limits = [self.catalog.category[shown]], [rp.max_per_category]
        if rp.max_per_brand:
            groups.append(self._brands()[order])
            limits.append(rp.max_per_brand)
        caps = Caps(groups, limits)
        exempt = (self.sig.values[order, _COLUMN["repeat"]] > 0) | self.sig.seen[order]
        features = self.catalog.feature_ids[shown]  # MMR's similarities
        local = np.arange(order.size)
        picked = diversify(local, caps, exempt, k, score[order], features, rp.mmr_lambda)
        return order[picked].tolist()

    def _capped(self, score: np.ndarray, mask: np.ndarray, k: int, head: int) -> list[int]:
        """``_diversified`` at λ = 1 (no MMR): the same list, from arrays over every
        candidate (the kernel walks only as far as the list needs)."""
        rows, caps, exempt = self._caps()
        return capped_top(score, mask, rows, caps, exempt, k, head).tolist()

    def _caps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kernels' group rows, cap limits and exempt mask over every candidate."""
        if self._cap_arrays is None:  # per scored set, not per feed: no feed changes them
            rp, n = self.rp, self.sig.cands.size
            limits = [rp.max_per_category, rp.max_per_brand]
            active = [r for r, lim in enumerate(limits) if lim]  # None or 0 caps nothing
            rows = np.zeros((len(active), n), dtype=np.int64)
            for r, which in enumerate(active):
                rows[r] = self.catalog.category[self.sig.cands] if which == 0 else self._brands()
            exempt = (self.sig.values[:, _COLUMN["repeat"]] > 0) | self.sig.seen
            caps = np.array([limits[r] for r in active], dtype=np.int64)
            self._cap_arrays = (rows, caps, exempt)
        return self._cap_arrays

    def _brands(self) -> np.ndarray:
        """Each candidate's brand feature id (PAD: none), made once per scored set."""
        if self._brand is None:
            self._brand = self.masks.brand_of(self.sig.cands)
        return self._brand

    def reason_inputs(self, sel: Selection) -> list[ReasonInput]:
        """Per shown item: its contribution per reason group (one matrix product for the
        whole list), the boosts that raised it, whether it was pinned."""
        chosen = np.asarray(sel.chosen, dtype=np.int64)
        grouped = (self.terms[chosen] @ _GROUPS).tolist()
        return [
            ReasonInput(dict(zip(REASON_GROUPS, row, strict=True)), b, pos in sel.pinned)
            for row, b, pos in zip(grouped, self._boosted(sel, chosen), sel.chosen, strict=True)
        ]

    def _boosted(self, sel: Selection, chosen: np.ndarray) -> list[tuple[str, ...]]:
        """Per shown item: the boost rules (factor > 1, applying now) that raised it."""
        boosted: list[tuple[str, ...]] = [()] * len(sel.chosen)
        for rule in sel.rules.boosts:
            if rule.factor > 1 and rule.applies(sel.context):
                hit = self.masks.mask(rule.feature)[self.sig.cands[chosen]].tolist()
                boosted = [
                    (*b, rule.feature) if h else b for b, h in zip(boosted, hit, strict=True)
                ]
        return boosted

    def items(
        self, sel: Selection, profile: UserProfile, now_ms: float, explain: bool
    ) -> list[RankedItem]:
        """The feed's list; with ``explain``, each item's reasons. What the reasons read is
        gathered once for the whole list: contributions per group (one matrix product), the
        relation sources of the shown items (one search), the feature names (a table kept per
        catalog), the liked features of the items whose affinity counts."""
        catalog = self.catalog
        chosen = np.asarray(sel.chosen, dtype=np.int64)  # (one conversion of the list)
        shown = self.sig.cands[chosen]
        idxs = shown.tolist()
        scores = sel.score[chosen].tolist()
        ids = catalog.ids
        if not explain or not idxs:
            return [RankedItem(ids[i], s, []) for i, s in zip(idxs, scores, strict=True)]
        texts = explain_list(
            idxs,
            (self.terms[chosen] @ _GROUPS).tolist(),
            self._boosted(sel, chosen),
            [pos in sel.pinned for pos in sel.chosen] if sel.pinned else [False] * len(idxs),
            catalog.feature_ids[shown],
            self.sig.liked,
            self.sig.rel_source.subset(shown),
            ListContext(catalog, profile, now_ms, sel.feed),
        )
        return [RankedItem(ids[i], s, r) for i, s, r in zip(idxs, scores, texts, strict=True)]

    def breakdown(self, sel: Selection, pos: int) -> dict[str, Any]:
        """Everything that made one shown item's score: each signal's value, weight and
        contribution, the boost factor and whether it was pinned or seen."""
        signals = {
            name: {
                "value": round(float(self.sig.values[pos, i]), 6),
                "weight": round(float(self.weights[i]), 6),
                "contribution": round(float(self.terms[pos, i]), 6),
            }
            for i, name in enumerate(SIGNALS)
        }
        return {
            "base": round(float(self.base[pos]), 6),
            "factor": round(float(sel.factors[pos]), 6),
            "score": round(float(sel.score[pos]), 6),
            "pinned": pos in sel.pinned,
            "seen": bool(self.sig.seen[pos]),
            "signals": signals,
        }
