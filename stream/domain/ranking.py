"""Ranking: a pure function of (profile, read models, learned propensities, profile, time).

score = weights · signals, where the signals (``stream.domain.signals``) are affinity on the
session and long-term horizons, relation strength × query recency, popularity, learned re-buy
propensity × purchase memory and learned view-return propensity × view recency. The weights
come from a ranking profile, by default fitted on the stream (``recstream model fit-ranking``).
Then business filters (stock, returned, just bought, items the shop's customers do not come
back to) and a per-category diversity cap on discoveries. Every item carries reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from stream.domain.catalog import PAD, Catalog
from stream.domain.learned import RepeatModel
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, ProfileConfig, UserProfile
from stream.domain.reasons import reasons_for
from stream.domain.relations import RelatedItems
from stream.domain.signals import candidate_signals
from stream.domain.trending import Trending

FEEDS = ("for_you", "deals_for_you", "new_for_you")
#: ``weights`` keys of a profile body, in ``signals.SIGNALS`` order after the affinity pair
WEIGHT_KEYS = {
    "affinity": "w_affinity",
    "relation": "w_relation",
    "popularity": "w_popularity",
    "session": "w_session",
    "long_term": "w_long_term",
    "repeat": "w_repeat",
    "view_return": "w_view_return",
    "trend_day": "w_trend_day",
    "trend_week": "w_trend_week",
    "relation_long": "w_relation_long",
}


@dataclass(frozen=True)
class RankingProfile:
    """Declarative ranking configuration (the body of a `ranking-profiles` message)."""

    name: str = "default"
    version: int = 1
    w_affinity: float = 1.0
    w_relation: float = 2.0
    w_popularity: float = 0.3
    #: each horizon's affinity is scaled to its strongest feature, so these split w_affinity
    w_session: float = 0.7
    w_long_term: float = 0.3
    size: int = 20
    max_per_category: int = 3
    query_items: int = 20
    query_tau_ms: float = 24 * 3600 * 1000.0
    buy_query_weight: float = 0.7
    affinity_features: int = 6
    per_feature_candidates: int = 40
    popular_candidates: int = 60
    filter_returned: bool = True
    filter_just_bought: bool = True
    #: "just bought" = in the latest order, placed less than this long ago
    just_bought_window_ms: float = 6 * 3600 * 1000.0
    #: never show anything the user bought (or, for ``filter_seen``, interacted with) before.
    #: None (the default): decided per item from the learned propensities — an item comes back
    #: only if the shop's customers re-buy it (buy what they viewed) at least this often
    filter_purchased: bool | None = None
    filter_seen: bool | None = None
    min_return_rate: float = 0.05
    #: learned re-buy propensity × decayed purchase count (relative to the user's strongest)
    w_repeat: float = 4.0
    #: learned view-return propensity × recency of the view
    w_view_return: float = 1.0
    #: interactions decayed over a day / a week, relative to the hottest item
    w_trend_day: float = 0.0
    w_trend_week: float = 0.0
    #: relations of the whole query set (``long_query_items``), decayed over weeks
    w_relation_long: float = 0.5
    long_query_items: int = 50
    long_query_tau_ms: float = 30 * 24 * 3600 * 1000.0
    #: how the weights were obtained ("hand" or the fit's slice), reported by `eval`
    fitted_on: str = "hand"

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def signal_weights(self) -> np.ndarray:
        """Weights in ``signals.SIGNALS`` order."""
        return np.array(
            [
                self.w_affinity * self.w_session,
                self.w_affinity * self.w_long_term,
                self.w_relation,
                self.w_popularity,
                self.w_repeat,
                self.w_view_return,
                self.w_trend_day,
                self.w_trend_week,
                self.w_relation_long,
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """A `ranking-profiles` body that ``from_dict`` reads back to an equal profile."""
        body = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in WEIGHT_KEYS.values()
        }
        body["weights"] = {key: getattr(self, attr) for key, attr in WEIGHT_KEYS.items()}
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> RankingProfile:
        """Build from a message body; ``weights``/``filters``/``diversity`` map onto fields."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in body.items() if k in known}
        weights = body.get("weights") or {}
        for key, attr in WEIGHT_KEYS.items():
            if key in weights:
                values[attr] = float(weights[key])
        filters = body.get("filters") or {}
        if "returned" in filters:
            values["filter_returned"] = bool(filters["returned"])
        for key in ("just_bought", "purchased", "seen"):
            if key in filters:
                values[f"filter_{key}"] = bool(filters[key])
        diversity = body.get("diversity") or {}
        if "max_per_category" in diversity:
            values["max_per_category"] = int(diversity["max_per_category"])
        return cls(**values)


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
    if len(catalog) == 0:
        return []
    sig = candidate_signals(profile, catalog, relations, rp, now_ms, feed, cfg, learned, trending)
    cands = sig.cands
    if cands.size == 0:
        return []
    terms = sig.values * rp.signal_weights()
    # + a per-item constant from the id: ties rank alike on every worker (see Catalog)
    score = terms.sum(axis=1) + catalog.tiebreak[cands]
    # only the best few hundred can make the list, even with the diversity cap skipping some
    head = min(cands.size, max(4 * rp.size * rp.max_per_category, 200))
    if head < cands.size:
        head_idx = np.argpartition(-score, head - 1)[:head]
        order = head_idx[np.argsort(-score[head_idx], kind="stable")]
    else:
        order = np.argsort(-score, kind="stable")
    chosen = _diversify(order, catalog.category[cands[order]].tolist(), sig.values[:, 4], rp)
    if not explain:
        return [RankedItem(catalog.ids[int(cands[p])], float(score[p]), []) for p in chosen]
    picked = []
    for pos in chosen:
        idx = int(cands[pos])
        t = terms[pos]
        parts = (
            float(t[0] + t[1]),
            float(t[2]),
            float(t[3] + t[6] + t[7]),
            float(t[4]),
            float(t[5]),
        )
        reasons = reasons_for(idx, parts, sig.liked, catalog, profile, sig.rel_source, now_ms, feed)
        picked.append(RankedItem(catalog.ids[idx], float(score[pos]), reasons))
    return picked


def _diversify(
    order: np.ndarray, categories: list[int], repeat: np.ndarray, rp: RankingProfile
) -> list[int]:
    """Cap discoveries per leaf category; items the user buys again are not capped (a
    household buying five kinds of yoghurt wants them all). Fill up from the overflow if the
    cap would leave the list short (a one-category shop still gets a full list)."""
    chosen: list[int] = []
    overflow: list[int] = []
    per_cat: dict[int, int] = {}
    for pos, cat in zip(order.tolist(), categories, strict=True):
        if repeat[pos] <= 0 and cat != PAD:
            if per_cat.get(cat, 0) >= rp.max_per_category:
                overflow.append(pos)
                continue
            per_cat[cat] = per_cat.get(cat, 0) + 1
        chosen.append(pos)
        if len(chosen) >= rp.size:
            break
    chosen.extend(overflow[: rp.size - len(chosen)])
    return chosen


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
    """A built-in profile by name, or a JSON file holding a `ranking-profiles` body."""
    if not spec:
        return BUILTIN_PROFILES["default"]
    if spec in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[spec]
    from pathlib import Path

    import orjson

    path = Path(spec)
    if not path.is_file():
        names = ", ".join(BUILTIN_PROFILES)
        raise ValueError(f"ranking profile {spec!r} is neither a built-in ({names}) nor a file")
    return RankingProfile.from_dict(orjson.loads(path.read_bytes()))
