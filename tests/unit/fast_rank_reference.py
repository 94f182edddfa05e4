"""The ranking read path as it was before the fast path (commit 705e703), kept as a reference.

``test_fast_rank`` runs both on a seeded workload so a speed-up cannot silently change lists.
Only the pre-change staleness caches are left out (the 5 % co-occurrence row cache, the
popular / per-feature / trending top lists refreshed every 256 interactions, the repeat rates
refreshed at 1 % growth): they made results depend on when something was read, which is what
the fast path removes, so here each is the exact computation it approximated (a full sort, a
fresh rate). Everything else is the old code, loops and all.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stream.domain.blended import BlendedRelations
from stream.domain.candidate_kernels import lookup_sorted
from stream.domain.catalog import PAD, Catalog
from stream.domain.context_signals import (
    freshness,
    price_fit,
    query_candidates,
    query_match,
    query_weight,
)
from stream.domain.learned import RepeatModel
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, ProfileConfig, UserProfile, decayed
from stream.domain.ranking_profile import RankingProfile
from stream.domain.reasons import ReasonInput, Sources, _ago, readable
from stream.domain.relations import CoOccurrence
from stream.domain.scored_set import RankedItem, ScoredSet, Selection
from stream.domain.signals import (
    SIGNALS,
    RelationSources,
    Returns,
    Signals,
    _pinned,
    _view_scores,
    banned_items,
    category_of,
)
from stream.domain.trending import Trending


def lookup(scores: dict[int, float], cands: np.ndarray) -> np.ndarray:
    """Scores of sorted candidate indexes from a sparse dict, without a Python loop per item."""
    out = np.zeros(cands.size, dtype=np.float64)
    if scores:
        keys = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
        vals = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
        pos = np.searchsorted(cands, keys)
        hit = (pos < cands.size) & (cands[np.minimum(pos, cands.size - 1)] == keys)
        out[pos[hit]] = vals[hit]
    return out


_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
_NONE = np.zeros(0, dtype=np.int64)


def cooc_related(cooc: CoOccurrence, idx: int) -> tuple[np.ndarray, np.ndarray]:
    """The old ``CoOccurrence.related``: a dict row to arrays, a loop over partner counts."""
    row = cooc.pairs.get(idx)
    if not row:
        return _EMPTY
    ci = cooc.counts.get(idx, 1.0)
    keys = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
    pair = np.fromiter(row.values(), dtype=np.float64, count=len(row))
    counts = cooc.counts
    their = np.fromiter((counts.get(j, 1.0) for j in row), dtype=np.float64, count=len(row))
    strength = pair / np.sqrt(ci * np.maximum(their, 1.0))
    if cooc.tiebreak is not None:
        strength = strength + cooc.tiebreak(keys)
    if strength.size > cooc.top_k:
        part = np.argpartition(-strength, cooc.top_k - 1)[: cooc.top_k]
    else:
        part = np.arange(strength.size)
    order = part[np.argsort(-strength[part], kind="stable")]
    return keys[order], np.minimum(1.0, strength[order])


def blend_related(b: BlendedRelations, idx: int, role: str) -> tuple[np.ndarray, np.ndarray]:
    """The old ``BlendedRelations.related`` / ``_merge``, one row at a time."""
    co = related(b.cooccurrence, idx, role) if b.cooccurrence_weight > 0 else _EMPTY
    if b.lookup is None or b.lookup_weight <= 0:
        return co
    row = b.lookup.related(idx, role)
    idf = b._target_idf(b._lookup_stamp())
    n = row[0].size
    learned = (row[0], 1.0 - np.arange(n, dtype=np.float64) / max(n, 1))
    if idf is not None and n:
        learned = (row[0], learned[1] * idf[np.minimum(row[0], idf.size - 1)])
    if co[0].size == 0:
        return learned
    if learned[0].size == 0:
        return co
    wl, wc = b.lookup_weight, b.cooccurrence_weight
    targets = np.concatenate([learned[0], co[0]])
    weighted = np.concatenate([learned[1] * wl, co[1] * wc])
    uniq, inv = np.unique(targets, return_inverse=True)
    strength = np.bincount(inv, weights=weighted, minlength=uniq.size) / (wl + wc)
    order = np.argsort(-strength, kind="stable")
    return uniq[order], np.minimum(1.0, strength[order])


def related(relations: Any, idx: int, role: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(relations, CoOccurrence):
        return cooc_related(relations, idx)
    if isinstance(relations, BlendedRelations):
        return blend_related(relations, idx, role)
    out: tuple[np.ndarray, np.ndarray] = relations.related(idx, role)
    return out


def relation_scores(
    profile: UserProfile, catalog: Catalog, relations: Any, rp: RankingProfile, now_ms: float
) -> tuple[np.ndarray, np.ndarray, RelationSources]:
    """The old ``signals.relation_scores``: one ``related`` call per query."""
    long_on = rp.w_relation_long > 0
    depth = rp.long_query_items if long_on else rp.query_items
    parts: list[tuple[np.ndarray, np.ndarray, float, float, int]] = []
    queries: list[tuple[float, int, str, float]] = []
    for n, (item_id, role, ts) in enumerate(profile.queries[:depth]):
        q = catalog.index.get(item_id)
        if q is None:
            continue
        age = max(0.0, now_ms - ts)
        weight = rp.buy_query_weight if role == "buy" else 1.0
        recency = weight * math.exp(-age / rp.query_tau_ms) if n < rp.query_items else 0.0
        long_recency = weight * math.exp(-age / rp.long_query_tau_ms) if long_on else 0.0
        targets, strengths = related(relations, q, role)
        if targets.size:
            parts.append((targets, strengths, recency, long_recency, len(queries)))
            queries.append((0.0, q, role, ts))
    if not parts:
        empty = np.zeros(0)
        return empty, empty, RelationSources(_NONE, _NONE, queries)
    targets = np.concatenate([p[0] for p in parts])
    strengths = np.concatenate([p[1] for p in parts])
    sizes = [p[0].size for p in parts]
    short = strengths * np.repeat([p[2] for p in parts], sizes)
    long = strengths * np.repeat([p[3] for p in parts], sizes)
    origin = np.repeat([p[4] for p in parts], sizes)
    keep = (short > 0) | (long > 0)
    targets, short, long, origin = targets[keep], short[keep], long[keep], origin[keep]
    uniq, inv = np.unique(targets, return_inverse=True)
    short_sum = np.bincount(inv, weights=short, minlength=uniq.size)
    long_sum = np.bincount(inv, weights=long, minlength=uniq.size)
    order = np.lexsort((-(short + 1e-12 * long), inv))
    first = np.ones(order.size, dtype=bool)
    first[1:] = inv[order][1:] != inv[order][:-1]
    best = origin[order][first]
    return short_sum, long_sum, RelationSources(uniq, best, queries)


# -- candidate pools without their read-time caches (each the full computation) ---------------
def _by_popularity(catalog: Catalog, members: np.ndarray, k: int) -> np.ndarray:
    members = np.sort(members)
    members = members[catalog.eligible(members)]
    key = catalog.popularity[members] + catalog.tiebreak[members]
    return members[np.argsort(-key, kind="stable")][:k]


def popular(catalog: Catalog, k: int) -> np.ndarray:
    return _by_popularity(catalog, np.arange(len(catalog), dtype=np.int64), k)


def top_for_feature(catalog: Catalog, fid: int, k: int) -> np.ndarray:
    members = catalog.members_of(fid)
    return _by_popularity(catalog, members, k)


def trending_top(trending: Trending, k: int) -> np.ndarray:
    row = trending.scores[0]
    hot = np.flatnonzero(row > 0)
    return hot[np.argsort(-row[hot], kind="stable")][:k]


def returns_of(profile: UserProfile, learned: RepeatModel | None, category: Any) -> Returns:
    bought = set(profile.purchases) | {q[0] for q in profile.queries if q[1] == "buy"}
    viewed = {q[0] for q in profile.queries if q[1] == "view"} - bought
    if learned is None:
        return Returns(dict.fromkeys(bought, 1.0), dict.fromkeys(viewed, 1.0))
    return Returns(
        learned.rebuy.rates(bought, category), learned.view_return.rates(viewed, category)
    )


def _repeat_scores(
    profile: UserProfile,
    catalog: Catalog,
    now_ms: float,
    cfg: ProfileConfig,
    rates: dict[str, float],
    banned: set[str],
) -> dict[int, float]:
    memory: dict[int, float] = {}
    for item_id, (n, ts) in profile.purchases.items():
        idx = catalog.index.get(item_id)
        if idx is not None and item_id not in banned:
            memory[idx] = rates.get(item_id, 1.0) * decayed(n, ts, now_ms, cfg.repeat_tau_ms)
    top = max(memory.values(), default=0.0)
    return {i: v / top for i, v in memory.items()} if top > 0 else {}


def _dense(catalog: Catalog, aff: dict[str, float]) -> np.ndarray:
    weights = np.zeros(len(catalog.vocab_names), dtype=np.float64)
    for name, w in aff.items():
        fid = catalog.vocab.get(name)
        if fid is not None and fid != PAD:
            weights[fid] = w
    return weights


def candidate_signals(
    profile: UserProfile,
    catalog: Catalog,
    relations: Any,
    rp: RankingProfile,
    now_ms: float,
    feed: str = "for_you",
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    learned: RepeatModel | None = None,
    trending: Trending | None = None,
) -> Signals:
    """The old ``signals.candidate_signals`` (``liked`` is a dict, as the old reasons read it)."""
    returns = returns_of(profile, learned, category_of(catalog))
    banned = banned_items(profile, rp, now_ms, returns)
    rel_scores, rel_long, rel_source = relation_scores(profile, catalog, relations, rp, now_ms)
    repeat = _repeat_scores(profile, catalog, now_ms, cfg, returns.bought, banned)
    views = _view_scores(profile, catalog, rp, now_ms, returns.viewed if learned else {}, banned)
    session = _dense(catalog, profile.affinities(now_ms, cfg, 1.0, 0.0))
    long_term = _dense(catalog, profile.affinities(now_ms, cfg, 0.0, 1.0))
    combined = rp.w_session * session + rp.w_long_term * long_term
    liked = {int(f): float(combined[f]) for f in np.flatnonzero(combined > 0)}
    pools = [
        rel_source.targets,
        np.fromiter(repeat.keys(), dtype=np.int64, count=len(repeat)),
        np.fromiter(views.keys(), dtype=np.int64, count=len(views)),
    ]
    for fid in sorted(liked, key=lambda f: -liked[f])[: rp.affinity_features]:
        pools.append(top_for_feature(catalog, fid, rp.per_feature_candidates))
    pools.append(popular(catalog, rp.popular_candidates))
    pools.append(_pinned(rp, catalog))
    q_weight = query_weight(profile, now_ms, rp.query_context_tau_ms)
    if q_weight > 0:
        pools.append(query_candidates(profile, catalog, rp.per_feature_candidates))
    if trending is not None:
        pools.append(trending_top(trending, rp.popular_candidates))
    cands = np.unique(np.concatenate(pools))
    keep = catalog.eligible(cands)
    if feed == "deals_for_you":
        keep &= catalog.deal[cands]
    elif feed == "new_for_you":
        keep &= catalog.new[cands]
    if banned:
        banned_idx = [catalog.index[i] for i in banned if i in catalog.index]
        keep &= ~np.isin(cands, banned_idx)
    cands = cands[keep]
    seen_idx = [catalog.index[i] for i in returns.viewed if i in catalog.index]
    seen = np.isin(cands, seen_idx) if seen_idx else np.zeros(cands.size, dtype=bool)
    values = np.zeros((cands.size, len(SIGNALS)), dtype=np.float64)
    if cands.size:
        feat = catalog.feature_ids[cands]
        for col, dense in ((0, session), (1, long_term)):
            values[:, col] = dense[feat].sum(axis=1) / max(1.0, float(np.abs(dense).max()))
        for col, scores in ((2, rel_scores), (8, rel_long)):
            rel = lookup_sorted(rel_source.targets, scores, cands)
            values[:, col] = rel / max(1e-9, float(rel.max())) if rel.any() else rel
        pop = catalog.popularity[cands]
        pop_max = float(pop.max())
        values[:, 3] = np.log1p(pop) / math.log1p(pop_max) if pop_max > 0 else 0.0
        values[:, 4] = lookup(repeat, cands)
        values[:, 5] = lookup(views, cands)
        if trending is not None:
            values[:, 6:8] = trending.values(cands)
        values[:, 9] = query_match(profile, catalog, cands, q_weight)
        if rp.w_price_fit:
            values[:, 10] = price_fit(catalog, cands, long_term + session)
        if rp.w_freshness:
            values[:, 11] = freshness(catalog, cands, now_ms, rp.freshness_tau_ms)
    return Signals(cands, values, rel_source, liked, seen)  # type: ignore[arg-type]


# -- reasons (the old ``reasons.py``, reading ``liked`` as a dict) ------------------------------
def _liked_reason(
    idx: int, liked: dict[int, float], catalog: Catalog, profile: UserProfile, now_ms: float
) -> str:
    fids = sorted(
        (f for f in catalog.feature_ids[idx].tolist() if f in liked), key=lambda f: -liked[f]
    )
    names = [n for n in (readable(catalog.vocab_names[f]) for f in fids) if n]
    if names:
        return f"matches your interest in {', '.join(dict.fromkeys(names[:3]))}"
    shared = set(fids)
    for item_id, role, ts in profile.queries[:20]:
        q = catalog.index.get(item_id)
        if q is not None and q != idx and shared & set(catalog.feature_ids[q].tolist()):
            verb = "bought" if role == "buy" else "viewed"
            return f"similar to '{catalog.titles[q]}' you {verb} {_ago(now_ms - ts)}"
    return "similar to what you looked at"


def reasons_for(
    idx: int,
    info: ReasonInput,
    liked: dict[int, float],
    catalog: Catalog,
    profile: UserProfile,
    rel_source: Sources,
    now_ms: float,
    feed: str,
) -> list[str]:
    """Why this item is here, strongest signal first (what support staff and users read)."""
    c = info.contributions
    reasons: list[tuple[float, str]] = []
    if info.pinned:
        reasons.append((float("inf"), "featured by the shop"))
    if c.get("query_match", 0.0) > 0:
        reasons.append((c["query_match"], f"matches your search '{profile.query}'"))
    if c.get("view_return", 0.0) > 0:
        reasons.append((c["view_return"], "you looked at this recently"))
    if c.get("repeat", 0.0) > 0:
        n, when = profile.purchases.get(catalog.ids[idx], (1.0, now_ms))
        often = "regularly" if n >= 1.5 else "before"
        reasons.append((c["repeat"], f"you bought this {often} (last {_ago(now_ms - when)})"))
    rel = c.get("relation", 0.0)
    if rel > 0 and idx in rel_source:
        _, q, role, ts = rel_source[idx]
        verb = "bought" if role == "buy" else "viewed"
        reasons.append((rel, f"related to '{catalog.titles[q]}' you {verb} {_ago(now_ms - ts)}"))
    aff = c.get("affinity", 0.0)
    if aff > 0:
        reasons.append((aff, _liked_reason(idx, liked, catalog, profile, now_ms)))
    elif aff < 0:
        reasons.append((0.0, "partly matches features you turned away from"))
    if c.get("price_fit", 0.0) > 0:
        reasons.append((c["price_fit"], "in your usual price range"))
    if c.get("popularity", 0.0) > 0:
        reasons.append((c["popularity"], "popular with shoppers right now"))
    if c.get("freshness", 0.0) > 0:
        reasons.append((c["freshness"], "recently added to the shop"))
    for name in dict.fromkeys(n for n in map(readable, info.boosted_by) if n):
        reasons.append((0.0, "on deal" if name == "deal" else f"promoted: {name}"))
    if feed == "deals_for_you" and "deal" not in info.boosted_by:
        reasons.append((0.0, "on deal"))
    elif feed == "new_for_you":
        reasons.append((0.0, "new in the catalog"))
    if not reasons:
        reasons.append((0.0, "in stock and not yet seen by you"))
    reasons.sort(key=lambda r: -r[0])
    return [text for _, text in reasons]


def items(
    self: ScoredSet, sel: Selection, profile: UserProfile, now_ms: float, explain: bool
) -> list[RankedItem]:
    """The old ``ScoredSet.items``: one ``reasons_for`` call per item on the whole signals."""
    catalog, cands = self.catalog, self.sig.cands
    idxs = cands[sel.chosen].tolist()
    scores = sel.score[sel.chosen].tolist()
    if not explain or not idxs:
        return [RankedItem(catalog.ids[i], s, []) for i, s in zip(idxs, scores, strict=True)]
    out = []
    for idx, score, info in zip(idxs, scores, self.reason_inputs(sel), strict=True):
        liked: Any = self.sig.liked
        reasons = reasons_for(
            idx, info, liked, catalog, profile, self.sig.rel_source, now_ms, sel.feed
        )
        out.append(RankedItem(catalog.ids[idx], score, reasons))
    return out
