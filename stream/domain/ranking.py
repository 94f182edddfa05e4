"""Candidates and ranking: a pure function of (profile, read models, ranking profile, time).

score = w_aff · (sparse affinity · item features) + w_rel · (relation strength × query recency)
        + w_pop · popularity + w_repeat · (decayed purchase count),
then business filters (stock, returned, just bought, feed) and a per-category diversity cap.
Every returned item carries human-readable reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from stream.domain.catalog import PAD, Catalog
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, ProfileConfig, UserProfile, decayed
from stream.domain.relations import RelatedItems

FEEDS = ("for_you", "deals_for_you", "new_for_you")


@dataclass(frozen=True)
class RankingProfile:
    """Declarative ranking configuration (the body of a `ranking-profiles` message)."""

    name: str = "default"
    version: int = 1
    w_affinity: float = 1.0
    w_relation: float = 2.0
    w_popularity: float = 0.3
    w_session: float = 2.0
    w_long_term: float = 1.0
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
    #: "just bought" = in the latest order, placed less than this long ago; after that a
    #: repeat purchase is plausible (groceries) unless ``filter_purchased`` says otherwise
    just_bought_window_ms: float = 6 * 3600 * 1000.0
    #: never show anything the user bought (or, for ``filter_seen``, interacted with) before:
    #: for catalogues where repeats make no sense (films, appliances)
    filter_purchased: bool = False
    filter_seen: bool = False
    #: repeat-purchase signal: bought items come back by decayed purchase count (the user's
    #: strongest repeat item scores w_repeat)
    w_repeat: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> RankingProfile:
        """Build from a message body; ``weights``/``filters``/``diversity`` map onto fields."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in body.items() if k in known}
        weights = body.get("weights") or {}
        for key, attr in (
            ("affinity", "w_affinity"),
            ("relation", "w_relation"),
            ("popularity", "w_popularity"),
            ("session", "w_session"),
            ("long_term", "w_long_term"),
        ):
            if key in weights:
                values[attr] = float(weights[key])
        filters = body.get("filters") or {}
        if "returned" in filters:
            values["filter_returned"] = bool(filters["returned"])
        for key in ("just_bought", "purchased", "seen"):
            if key in filters:
                values[f"filter_{key}"] = bool(filters[key])
        if "repeat" in weights:
            values["w_repeat"] = float(weights["repeat"])
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


def _ago(ms: float) -> str:
    minutes = ms / 60_000
    if minutes < 1:
        return "just now"
    if minutes < 90:
        return f"{int(minutes)} min ago"
    if minutes < 48 * 60:
        return f"{int(minutes / 60)} h ago"
    return f"{int(minutes / 1440)} days ago"


def rank(
    profile: UserProfile,
    catalog: Catalog,
    relations: RelatedItems,
    rp: RankingProfile,
    now_ms: float,
    feed: str = "for_you",
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    explain: bool = True,
) -> list[RankedItem]:
    """Rank candidates for one user and feed; never returns an ineligible item."""
    n_items = len(catalog)
    if n_items == 0:
        return []
    # 1. relation candidates from the query set (Pfeed-style), weighted by query recency
    rel_scores, rel_source = _relation_scores(profile, catalog, relations, rp, now_ms)
    repeat: dict[int, float] = {}
    if rp.w_repeat > 0:
        for item_id, (n, ts) in profile.purchases.items():
            idx = catalog.index.get(item_id)
            if idx is not None:
                repeat[idx] = decayed(n, ts, now_ms, cfg.repeat_tau_ms)
        if repeat:
            top = max(repeat.values())
            repeat = {i: v / top for i, v in repeat.items()}
    # 2. affinity candidates: popular items carrying the user's strongest positive features
    aff = profile.affinities(now_ms, cfg, rp.w_session, rp.w_long_term)
    weights = np.zeros(len(catalog.vocab_names), dtype=np.float64)
    liked: dict[int, float] = {}  # feature id -> positive weight, for the reasons
    for name, w in aff.items():
        fid = catalog.vocab.get(name)
        if fid is not None and fid != PAD:
            weights[fid] = w
            if w > 0:
                liked[fid] = w
    top_features = sorted((kv for kv in aff.items() if kv[1] > 0), key=lambda kv: -kv[1])
    pools = [
        np.fromiter(rel_scores.keys(), dtype=np.int64, count=len(rel_scores)),
        np.fromiter(repeat.keys(), dtype=np.int64, count=len(repeat)),
    ]
    for name, _ in top_features[: rp.affinity_features]:
        fid = catalog.vocab.get(name)
        if fid is not None:
            pools.append(catalog.top_for_feature(fid, rp.per_feature_candidates))
    # 3. popular items: cold start and filler
    pools.append(catalog.popular(rp.popular_candidates))
    cands = np.unique(np.concatenate(pools))
    # business filters
    keep = catalog.eligible(cands)
    if feed == "deals_for_you":
        keep &= catalog.deal[cands]
    elif feed == "new_for_you":
        keep &= catalog.new[cands]
    banned: set[str] = set()
    if rp.filter_returned:
        banned.update(profile.returned)
    if rp.filter_just_bought and now_ms - profile.just_bought_ts < rp.just_bought_window_ms:
        banned.update(profile.just_bought)
    if rp.filter_purchased or rp.filter_seen:
        banned.update(q[0] for q in profile.queries if rp.filter_seen or q[1] == "buy")
    if banned:
        banned_idx = [catalog.index[i] for i in banned if i in catalog.index]
        keep &= ~np.isin(cands, banned_idx)
    cands = cands[keep]
    if cands.size == 0:
        return []
    # scoring, vectorised
    feat = catalog.feature_ids[cands]
    aff_raw = weights[feat].sum(axis=1)
    scale = max(1.0, float(np.abs(weights).max()))
    aff_term = rp.w_affinity * aff_raw / scale
    rel = _lookup(rel_scores, cands)
    rel_term = rp.w_relation * rel / max(1e-9, float(rel.max())) if rel.any() else rel
    pop = catalog.popularity[cands]
    pop_max = float(pop.max())
    pop_term = rp.w_popularity * np.log1p(pop) / math.log1p(pop_max) if pop_max > 0 else pop * 0
    rep_term = np.zeros(cands.size)
    if repeat:
        rep_term = rp.w_repeat * _lookup(repeat, cands)
    score = aff_term + rel_term + pop_term + rep_term + catalog.tiebreak[cands]
    # only the best few hundred can make the list, even with the diversity cap skipping some
    head = min(cands.size, max(4 * rp.size * rp.max_per_category, 200))
    if head < cands.size:
        head_idx = np.argpartition(-score, head - 1)[:head]
        order = head_idx[np.argsort(-score[head_idx], kind="stable")]
    else:
        order = np.argsort(-score, kind="stable")
    categories = catalog.category[cands[order]].tolist()
    # diversity: cap items per leaf category; fill up from the overflow if the cap
    # would leave the list short (a one-category shop still gets a full list)
    chosen: list[int] = []
    overflow: list[int] = []
    per_cat: dict[int, int] = {}
    for pos, cat in zip(order.tolist(), categories, strict=True):
        if cat != PAD and per_cat.get(cat, 0) >= rp.max_per_category:
            overflow.append(pos)
            continue
        per_cat[cat] = per_cat.get(cat, 0) + 1
        chosen.append(pos)
        if len(chosen) >= rp.size:
            break
    chosen.extend(overflow[: rp.size - len(chosen)])
    if not explain:
        return [RankedItem(catalog.ids[int(cands[p])], float(score[p]), []) for p in chosen]
    picked = []
    for pos in chosen:
        idx = int(cands[pos])
        terms = (
            float(aff_term[pos]),
            float(rel_term[pos]),
            float(pop_term[pos]),
            float(rep_term[pos]),
        )
        reasons = _reasons(idx, terms, liked, catalog, profile, rel_source, now_ms, feed)
        picked.append(RankedItem(catalog.ids[idx], float(score[pos]), reasons))
    return picked


def _relation_scores(
    profile: UserProfile,
    catalog: Catalog,
    relations: RelatedItems,
    rp: RankingProfile,
    now_ms: float,
) -> tuple[dict[int, float], dict[int, tuple[float, int, str, float]]]:
    """Relation strength × query recency summed over the query set, and for each target the
    query that contributed most (what its reason names). Plain dicts: at a few hundred
    (query, target) pairs they beat numpy's per-call overhead."""
    scores: dict[int, float] = {}
    source: dict[int, tuple[float, int, str, float]] = {}
    for item_id, role, ts in profile.queries[: rp.query_items]:
        q = catalog.index.get(item_id)
        if q is None:
            continue
        recency = math.exp(-max(0.0, now_ms - ts) / rp.query_tau_ms)
        if role == "buy":
            recency *= rp.buy_query_weight
        targets, strengths = relations.related(q, role)
        for j, strength in zip(targets.tolist(), strengths.tolist(), strict=True):
            contribution = strength * recency
            scores[j] = scores.get(j, 0.0) + contribution
            best = source.get(j)
            if best is None or contribution > best[0]:
                source[j] = (contribution, q, role, ts)
    return scores, source


def _lookup(scores: dict[int, float], cands: np.ndarray) -> np.ndarray:
    """Scores of sorted candidate indexes from a sparse dict, without a Python loop per item."""
    out = np.zeros(cands.size, dtype=np.float64)
    if scores:
        keys = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
        vals = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
        pos = np.searchsorted(cands, keys)
        hit = (pos < cands.size) & (cands[np.minimum(pos, cands.size - 1)] == keys)
        out[pos[hit]] = vals[hit]
    return out


def _reasons(
    idx: int,
    terms: tuple[float, float, float, float],
    liked: dict[int, float],
    catalog: Catalog,
    profile: UserProfile,
    rel_source: dict[int, tuple[float, int, str, float]],
    now_ms: float,
    feed: str,
) -> list[str]:
    """Why this item is here, strongest signal first (what support staff and users read)."""
    aff, rel, pop, rep = terms
    reasons: list[tuple[float, str]] = []
    if rep > 0:
        n, when = profile.purchases.get(catalog.ids[idx], (1.0, now_ms))
        often = "regularly" if n >= 1.5 else "before"
        reasons.append((rep, f"you bought this {often} (last {_ago(now_ms - when)})"))
    if rel > 0 and idx in rel_source:
        _, q, role, ts = rel_source[idx]
        verb = "bought" if role == "buy" else "viewed"
        reasons.append((rel, f"related to '{catalog.titles[q]}' you {verb} {_ago(now_ms - ts)}"))
    if aff > 0:
        fids = sorted(
            (f for f in catalog.feature_ids[idx].tolist() if f in liked), key=lambda f: -liked[f]
        )
        names = ", ".join(catalog.vocab_names[f] for f in fids[:3])
        reasons.append((aff, f"matches your interest in {names}"))
    elif aff < 0:
        reasons.append((0.0, "partly matches features you turned away from"))
    if pop > 0:
        reasons.append((pop, "popular with shoppers right now"))
    if feed == "deals_for_you":
        reasons.append((0.0, "on deal"))
    elif feed == "new_for_you":
        reasons.append((0.0, "new in the catalog"))
    if not reasons:
        reasons.append((0.0, "in stock and not yet seen by you"))
    reasons.sort(key=lambda r: -r[0])
    return [text for _, text in reasons]


#: Built-in profiles a worker can start with (``RECSTREAM_RANKING_PROFILE``): a grocery shop
#: wants staples back, a film shop never shows a film twice.
BUILTIN_PROFILES: dict[str, RankingProfile] = {
    "default": RankingProfile(),
    # weights chosen on data disjoint from the reported runs (see reports/README.md)
    "grocery": RankingProfile(name="grocery", w_repeat=20.0, max_per_category=10),
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
