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

from collections.abc import Sequence
from typing import Any

from stream.domain.catalog import Catalog
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
from stream.domain.relations import RelatedItems
from stream.domain.scored_set import RankedItem, ScoredSet
from stream.domain.signals import candidate_signals
from stream.domain.trending import Trending

__all__ = [
    "BUILTIN_PROFILES",
    "FEEDS",
    "WEIGHT_KEYS",
    "Boost",
    "FeedRules",
    "RankedItem",
    "RankingProfile",
    "explain_feed",
    "load_ranking_profile",
    "normalize_feature",
    "rank",
    "rank_feeds",
    "score_candidates",
]


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
    scored = score_candidates(profile, catalog, relations, rp, now_ms, cfg, learned, trending)
    if scored is None:
        return {feed: [] for feed in feeds}
    return {
        feed: scored.items(scored.select(feed, profile.context), profile, now_ms, explain)
        for feed in feeds
    }


def score_candidates(
    profile: UserProfile,
    catalog: Catalog,
    relations: RelatedItems,
    rp: RankingProfile,
    now_ms: float,
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    learned: RepeatModel | None = None,
    trending: Trending | None = None,
) -> ScoredSet | None:
    """The user's candidates and their scores (None when there is nothing to rank)."""
    if len(catalog) == 0:
        return None
    sig = candidate_signals(
        profile, catalog, relations, rp, now_ms, "for_you", cfg, learned, trending
    )
    return ScoredSet(sig, rp, catalog) if sig.cands.size else None


def explain_feed(
    profile: UserProfile,
    catalog: Catalog,
    relations: RelatedItems,
    rp: RankingProfile,
    now_ms: float,
    feed: str = "for_you",
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    learned: RepeatModel | None = None,
    trending: Trending | None = None,
) -> list[dict[str, Any]]:
    """The feed's list as ``rank`` makes it, each item with its title, reasons and full score
    breakdown (every signal's value, weight and contribution; boost factor; pinned; seen)."""
    scored = score_candidates(profile, catalog, relations, rp, now_ms, cfg, learned, trending)
    if scored is None:
        return []
    sel = scored.select(feed, profile.context)
    items = scored.items(sel, profile, now_ms, explain=True)
    return [
        {
            "item_id": item.item_id,
            "title": catalog.titles[catalog.index[item.item_id]],
            "reasons": item.reasons,
            **scored.breakdown(sel, pos),
        }
        for item, pos in zip(items, sel.chosen, strict=True)
    ]


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
