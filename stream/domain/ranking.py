"""Ranking: a pure function of (profile, read models, learned propensities, profile, time).

score = weights · signals, where the signals (``stream.domain.signals``) are affinity on the
session and long-term horizons, relation strength × query recency, popularity, learned re-buy
propensity × purchase memory and learned view-return propensity × view recency. The weights
come from a ranking profile (``stream.domain.ranking_profile``), by default fitted on the stream
(``recstream model fit-ranking``). The candidates are scored once per user burst; each feed is
a mask over that one scored set, with its own business rules (``stream.domain.scoring``: boosts,
buries, exclusions, pins) and diversity (``stream.domain.diversity``: caps and MMR). Items the
user viewed and did not buy come after the unseen ones and never use up a diversity cap. Only
the items returned get reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.diversity import Caps, diversify
from stream.domain.learned import RepeatModel
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, ProfileConfig, UserProfile
from stream.domain.ranking_profile import (
    FEEDS,
    WEIGHT_KEYS,
    Boost,
    FeedRules,
    RankingProfile,
    normalize_feature,
)
from stream.domain.reasons import reasons_for
from stream.domain.relations import RelatedItems
from stream.domain.scoring import (
    apply_factors,
    boost_factors,
    excluded,
    masks_of,
    pin_positions,
)
from stream.domain.signals import Signals, candidate_signals
from stream.domain.trending import Trending

__all__ = [
    "BUILTIN_PROFILES",
    "FEEDS",
    "WEIGHT_KEYS",
    "Boost",
    "FeedRules",
    "RankedItem",
    "RankingProfile",
    "load_ranking_profile",
    "normalize_feature",
    "rank",
    "rank_feeds",
]


@dataclass(frozen=True, slots=True)
class RankedItem:
    item_id: str
    score: float
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "score": round(self.score, 6), "reasons": self.reasons}


def rank(
    profile: UserProfile,
    catalog: Catalog,
    relations: RelatedItems,
    rp: RankingProfile,
    now_ms: float,
    feed: str = "for_you",
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    explain: bool = True,
    learned: RepeatModel | None = None,
    trending: Trending | None = None,
) -> list[RankedItem]:
    """Rank candidates for one user and feed; never returns an ineligible item."""
    lists = rank_feeds(
        profile, catalog, relations, rp, now_ms, (feed,), cfg, explain, learned, trending
    )
    return lists[feed]


def rank_feeds(
    profile: UserProfile,
    catalog: Catalog,
    relations: RelatedItems,
    rp: RankingProfile,
    now_ms: float,
    feeds: Sequence[str] = ("for_you",),
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    explain: bool = True,
    learned: RepeatModel | None = None,
    trending: Trending | None = None,
) -> dict[str, list[RankedItem]]:
    """Every feed's list from ONE scored candidate set: candidates and signals are computed
    once, each feed masks them (deals, new, its exclusions and removals) and applies its own
    boosts, pins and diversity."""
    out: dict[str, list[RankedItem]] = {feed: [] for feed in feeds}
    if len(catalog) == 0:
        return out
    sig = candidate_signals(
        profile, catalog, relations, rp, now_ms, "for_you", cfg, learned, trending
    )
    if sig.cands.size == 0:
        return out
    scored = ScoredSet(sig, sig.values * rp.signal_weights(), catalog)
    context = latest_context(profile)
    for feed in feeds:
        chosen, score = scored.select(rp, feed, context)
        out[feed] = scored.items(chosen, score, profile, now_ms, feed, explain)
    return out


def latest_context(profile: UserProfile) -> Mapping[str, str]:
    """The user's latest click context (device, locale, source), for conditioned boosts."""
    return profile.context


class ScoredSet:
    """One user's candidates with their weighted signal terms and base scores."""

    def __init__(self, sig: Signals, terms: np.ndarray, catalog: Catalog) -> None:
        self.sig = sig
        self.terms = terms
        self.catalog = catalog
        self.base = terms.sum(axis=1)
        self.masks = masks_of(catalog)
        self._brand: np.ndarray | None = None

    def feed_mask(self, feed: str, rules: FeedRules) -> np.ndarray:
        """Candidates this feed may show at all (before boosts remove any)."""
        cands = self.sig.cands
        if feed == "deals_for_you":
            keep = self.catalog.deal[cands].copy()
        elif feed == "new_for_you":
            keep = self.catalog.new[cands].copy()
        else:
            keep = np.ones(cands.size, dtype=bool)
        return keep & ~excluded(rules, self.masks, cands)

    def select(
        self, rp: RankingProfile, feed: str, context: Mapping[str, str]
    ) -> tuple[list[int], np.ndarray]:
        """Positions (into the candidates) of the feed's list, in order, and the final scores."""
        cands = self.sig.cands
        rules = rp.rules_for(feed)
        factors = boost_factors(rules.factors, self.masks, cands, context)
        keep = self.feed_mask(feed, rules) & (factors > 0)
        # + a per-item constant from the id: ties rank alike on every worker (see Catalog)
        score = apply_factors(self.base, factors) + self.catalog.tiebreak[cands]
        pins = [int(p) for p in pin_positions(rules, self.catalog, cands) if keep[p]]
        keep[pins] = False
        room = rp.size - len(pins)
        if room <= 0:
            return pins[: rp.size], score
        seen = self.sig.seen & keep
        if rp.seen_placement == "after":
            unseen = keep & ~seen
            tail = min(int(seen.sum()), rp.seen_tail)
            first = self._diversified(rp, score, unseen, room - tail)
            later = self._by_score(score, seen, room - len(first))
            return pins + first + later, score
        return pins + self._diversified(rp, score, keep, room), score

    def _by_score(self, score: np.ndarray, mask: np.ndarray, k: int) -> list[int]:
        pos = np.flatnonzero(mask)
        if k <= 0 or pos.size == 0:
            return []
        return pos[np.argsort(-score[pos], kind="stable")][:k].tolist()

    def _diversified(
        self, rp: RankingProfile, score: np.ndarray, mask: np.ndarray, k: int
    ) -> list[int]:
        pos = np.flatnonzero(mask)
        if k <= 0 or pos.size == 0:
            return []
        # only the best few hundred can make the list, even with the caps skipping some
        head = min(pos.size, max(4 * k * rp.max_per_category, 200))
        if head < pos.size:
            part = np.argpartition(-score[pos], head - 1)[:head]
            pos = pos[part]
        order = pos[np.argsort(-score[pos], kind="stable")]
        cands = self.sig.cands
        if self._brand is None and rp.max_per_brand:
            self._brand = self.masks.brand_of(cands)
        caps = Caps(
            (self.catalog.category[cands], self._brand if self._brand is not None else cands),
            (rp.max_per_category, rp.max_per_brand),
        )
        exempt = (self.sig.values[:, 4] > 0) | self.sig.seen
        features = self.catalog.feature_ids[cands] if rp.mmr_lambda < 1.0 else None
        return diversify(order, caps, exempt, k, score, features, rp.mmr_lambda)

    def items(
        self,
        chosen: list[int],
        score: np.ndarray,
        profile: UserProfile,
        now_ms: float,
        feed: str,
        explain: bool,
    ) -> list[RankedItem]:
        catalog, cands = self.catalog, self.sig.cands
        if not explain:
            return [RankedItem(catalog.ids[int(cands[p])], float(score[p]), []) for p in chosen]
        picked = []
        for pos in chosen:
            idx = int(cands[pos])
            t = self.terms[pos]
            parts = (
                float(t[0] + t[1]),
                float(t[2]),
                float(t[3] + t[6] + t[7]),
                float(t[4]),
                float(t[5]),
            )
            reasons = reasons_for(
                idx, parts, self.sig.liked, catalog, profile, self.sig.rel_source, now_ms, feed
            )
            picked.append(RankedItem(catalog.ids[idx], float(score[pos]), reasons))
        return picked


#: Built-in profiles a worker can start with (``RECSTREAM_RANKING_PROFILE``). ``default`` leaves
#: repeats to the learned propensities; the others are hand overrides kept for comparison: a
#: grocery shop that always wants staples back, a film shop that never shows a film twice.
BUILTIN_PROFILES: dict[str, RankingProfile] = {
    "default": RankingProfile(),
    "grocery": RankingProfile(
        name="grocery", filter_purchased=False, w_repeat=20.0, max_per_category=10
    ),
    "films": RankingProfile(name="films", filter_seen=True, w_repeat=0.0, w_affinity=0.3),
}


def load_ranking_profile(spec: str | None) -> RankingProfile:
    """A built-in profile by name, or a JSON file holding a `ranking-profiles` body (validated
    against the schema: a typo in a merchandiser's file fails loudly at start)."""
    if not spec:
        return BUILTIN_PROFILES["default"]
    if spec in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[spec]
    from pathlib import Path

    import orjson

    from stream.adapters.ranking_profiles import parse_ranking_profile

    path = Path(spec)
    if not path.is_file():
        names = ", ".join(BUILTIN_PROFILES)
        raise ValueError(f"ranking profile {spec!r} is neither a built-in ({names}) nor a file")
    try:
        body = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"ranking profile {spec}: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ValueError(f"ranking profile {spec}: a JSON object is needed")
    # a local file may leave out the identity the topic requires (files written before the
    # schema was enforced did): it gets the defaults ``from_dict`` always gave it
    return parse_ranking_profile({"name": "default", "version": 1, **body})
