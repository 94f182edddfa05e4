"""Candidates, eligibility and the engine's ranking signals, before any weight is applied.

Ranking is ``score = weights · signals``: this module computes the candidate set and one row
of signals per candidate (each roughly in [0, 1]); ``ranking.rank`` applies a profile's weights
and the learning-to-rank fit (``stream.evaluation.fit_ranking``) learns those weights from the
same rows. The eligibility rules are here too, so baselines in the evaluator ban exactly what
the engine bans.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stream.domain.affinity import FeatureWeights, affinity_vectors
from stream.domain.candidate_kernels import Block, candidate_block
from stream.domain.catalog import Catalog
from stream.domain.context_signals import (
    freshness,
    price_fit,
    query_candidates,
    query_match,
    query_weight,
)
from stream.domain.learned import RepeatModel
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, ProfileConfig, UserProfile, decayed
from stream.domain.query_rows import QueryRows, read_query_rows
from stream.domain.ranking_profile import FEEDS
from stream.domain.recent_relation import recent_from_rows
from stream.domain.relation_kernels import current_slots, scratch_slots
from stream.domain.relation_sums import recency_sums
from stream.domain.relations import RelatedItems
from stream.domain.search_filters import NO_FILTERS, filter_match, search_filters
from stream.domain.trending import Trending

if TYPE_CHECKING:
    from stream.domain.ranking_profile import RankingProfile

#: Columns of ``Signals.values``; ``RankingProfile.signal_weights`` follows this order.
SIGNALS = (
    "affinity_session",
    "affinity_long",
    "relation",
    "popularity",
    "repeat",
    "view_return",
    "trend_day",
    "trend_week",
    "relation_long",
    "query_match",
    "price_fit",
    "freshness",
    "relation_recent",
    "search_filters",
)
CategoryOf = Callable[[str], str | None]


def category_of(catalog: Catalog) -> CategoryOf:
    """Leaf category name of an item id (None without attributes or when unknown)."""
    return catalog.category_name


@dataclass
class Returns:
    """The items a user bought / only viewed, each with the learned chance that customers come
    back to such an item (1.0 for everything when no model is given: nothing is banned)."""

    bought: dict[str, float]
    viewed: dict[str, float]


def returns_of(profile: UserProfile, learned: RepeatModel | None, catalog: Catalog) -> Returns:
    queries = profile.queries
    bought = list(dict.fromkeys([*profile.purchases, *(q[0] for q in queries if q[1] == "buy")]))
    held = set(bought)
    viewed = list(dict.fromkeys(q[0] for q in queries if q[1] == "view" and q[0] not in held))
    if learned is None:
        return Returns(dict.fromkeys(bought, 1.0), dict.fromkeys(viewed, 1.0))
    return Returns(
        learned.rebuy.rates_for(bought, catalog), learned.view_return.rates_for(viewed, catalog)
    )


def banned_items(
    profile: UserProfile, rp: RankingProfile, now_ms: float, returns: Returns
) -> set[str]:
    """Items this user must not be shown. A profile's explicit ``filter_purchased`` /
    ``filter_seen`` wins; left unset (None), an item the user bought (viewed) is banned when the
    shop's customers re-buy it (buy what they viewed) less often than ``min_return_rate``."""
    banned: set[str] = set(profile.returned) if rp.filter_returned else set()
    if rp.filter_just_bought and now_ms - profile.just_bought_ts < rp.just_bought_window_ms:
        banned.update(profile.just_bought)
    if rp.filter_seen:
        return banned | returns.bought.keys() | returns.viewed.keys()
    floor = rp.min_return_rate
    if rp.filter_purchased:
        banned |= returns.bought.keys()
    elif rp.filter_purchased is None:
        banned.update(i for i, rate in returns.bought.items() if rate < floor)
    if rp.filter_seen is None:
        banned.update(i for i, rate in returns.viewed.items() if rate < floor)
    return banned


@dataclass
class Signals:
    """Eligible candidates (sorted item indexes) and their signal rows."""

    cands: np.ndarray
    values: np.ndarray  # (len(cands), len(SIGNALS))
    rel_source: RelationSources
    #: per feature id: the user's weighted affinity (> 0: liked), for the reasons
    liked: FeatureWeights
    #: per candidate: the user viewed it and did not buy it (what "seen" placement moves)
    seen: np.ndarray


def candidate_signals(
    profile: UserProfile,
    catalog: Catalog,
    relations: RelatedItems,
    rp: RankingProfile,
    now_ms: float,
    feed: str = "for_you",
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    learned: RepeatModel | None = None,
    trending: Trending | None = None,
) -> Signals:
    """Candidates from relations, purchase memory, viewed items, liked features, popularity
    (all-time and recent); business filters; one signal row per surviving candidate."""
    returns = returns_of(profile, learned, catalog)
    banned = banned_items(profile, rp, now_ms, returns)
    # the deepest query set any relation signal reads, read once for all of them
    recent_depth = rp.query_items if rp.w_relation_recent else 0  # zero weight: skip the cost
    rows = read_query_rows(
        profile.queries, catalog, relations, max(relation_depth(rp), recent_depth)
    )
    rel_scores, rel_long, rel_source = relation_scores(
        profile, catalog, relations, rp, now_ms, rows
    )
    repeat = _repeat_scores(profile, catalog, now_ms, cfg, returns.bought, banned)
    views = _view_scores(profile, catalog, rp, now_ms, returns.viewed if learned else {}, banned)
    aff = affinity_vectors(profile, catalog, now_ms, cfg)
    combined, liked = aff.combined(rp.w_session, rp.w_long_term)
    pools = [
        rel_source.targets,
        np.fromiter(repeat.keys(), dtype=np.int64, count=len(repeat)),
        np.fromiter(views.keys(), dtype=np.int64, count=len(views)),
    ]
    strongest = liked[np.argsort(-combined[liked], kind="stable")[: rp.affinity_features]]
    pools.append(catalog.tops_for_features(strongest, rp.per_feature_candidates))
    pools.append(catalog.popular(rp.popular_candidates))
    pools.append(_pinned(rp, catalog))
    q_weight = query_weight(profile, now_ms, rp.query_context_tau_ms)
    filters = search_filters(profile, catalog) if q_weight > 0 else NO_FILTERS
    if q_weight > 0:
        pools.append(query_candidates(profile, catalog, rp.per_feature_candidates, filters))
    if trending is not None:
        pools.append(trending.top(rp.popular_candidates))
    recent: tuple[np.ndarray, np.ndarray] = (np.zeros(0, dtype=np.int64), np.zeros(0))
    if recent_depth:
        queries = profile.queries[:recent_depth]
        recent = recent_from_rows(rows, queries, rp.recent_decay, rp.buy_query_weight)
        pools.append(recent[0])
    flags = {"deals_for_you": catalog.deal, "new_for_you": catalog.new}.get(feed)
    index = catalog.index
    block = Block(
        np.concatenate(pools).astype(np.int64, copy=False),
        catalog.available,
        catalog.deleted,
        flags,
        _indexes([i for i in map(index.get, banned) if i is not None]),
        _indexes([i for i in map(index.get, returns.viewed) if i is not None]),
        catalog.feature_ids,
        (aff.ids, aff.session, aff.long_term, aff.scale(aff.session), aff.scale(aff.long_term)),
        (rel_source.targets, rel_scores, rel_long, *recent),
        (*_sparse(repeat), *_sparse(views)),
        _BLOCK_COLS,
        len(SIGNALS),
    )
    cands, values, seen = candidate_block(block)
    if cands.size:
        pop = catalog.popularity[cands]
        pop_max = float(pop.max())
        values[:, 3] = np.log1p(pop) / math.log1p(pop_max) if pop_max > 0 else 0.0
        if trending is not None:
            trending.fill(cands, values[:, 6:8])
        values[:, 9] = query_match(profile, catalog, cands, q_weight)
        values[:, 13] = filter_match(filters, catalog, cands, q_weight)
        if rp.w_price_fit:  # zero weight: skip the cost
            # (a vocabulary-sized vector, built only when the signal is weighted)
            values[:, 10] = price_fit(catalog, cands, aff.dense(aff.long_term + aff.session))
        if rp.w_freshness:
            values[:, 11] = freshness(catalog, cands, now_ms, rp.freshness_tau_ms)
    return Signals(cands, values, rel_source, combined, seen)


#: the columns ``candidate_block`` fills, in the order it takes them
_BLOCK_COLS = np.array(
    [
        SIGNALS.index(name)
        for name in (
            "affinity_session",
            "affinity_long",
            "relation",
            "relation_long",
            "relation_recent",
            "repeat",
            "view_return",
        )
    ],
    dtype=np.int64,
)


def _indexes(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64) if values else _NONE


_NO_SCORES = np.zeros(0, dtype=np.float64)


def _sparse(scores: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """A sparse score dict as (keys, values) arrays, for ``candidate_block`` (which only reads
    them: an empty dict, most users' repeat scores, shares two empty arrays)."""
    if not scores:
        return _NONE, _NO_SCORES
    keys = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
    return keys, np.fromiter(scores.values(), dtype=np.float64, count=len(scores))


def _pinned(rp: RankingProfile, catalog: Catalog) -> np.ndarray:
    """Pinned items of every feed: candidates whatever their signals (filters still apply)."""
    pins = {p for feed in FEEDS for p in rp.rules_for(feed).pins}
    return np.fromiter((catalog.index[p] for p in pins if p in catalog.index), dtype=np.int64)


def _repeat_scores(
    profile: UserProfile,
    catalog: Catalog,
    now_ms: float,
    cfg: ProfileConfig,
    rates: dict[str, float],
    banned: set[str],
) -> dict[int, float]:
    """Re-buy propensity × the user's decayed purchase count (relative to their strongest)."""
    memory: dict[int, float] = {}
    index, rate_of, tau = catalog.index.get, rates.get, cfg.repeat_tau_ms
    for item_id, (n, ts) in profile.purchases.items():
        idx = index(item_id)
        if idx is not None and item_id not in banned:
            memory[idx] = rate_of(item_id, 1.0) * decayed(n, ts, now_ms, tau)
    top = max(memory.values(), default=0.0)
    return {i: v / top for i, v in memory.items()} if top > 0 else {}


def _view_scores(
    profile: UserProfile,
    catalog: Catalog,
    rp: RankingProfile,
    now_ms: float,
    rates: dict[str, float],
    banned: set[str],
) -> dict[int, float]:
    """Viewed, not bought items: view-return propensity × recency of the view."""
    out: dict[int, float] = {}
    for item_id, role, ts in profile.queries[: rp.query_items]:
        idx = catalog.index.get(item_id)
        if role != "view" or idx is None or item_id in banned or item_id not in rates:
            continue
        recency = math.exp(-max(0.0, now_ms - ts) / rp.query_tau_ms)
        out[idx] = max(out.get(idx, 0.0), rates[item_id] * recency)
    return out


class RelationSources:
    """For each relation target (sorted), the query that contributed most: what its reason
    names. Built from arrays; a dict-like view so reasons look up only the items shown."""

    def __init__(
        self, targets: np.ndarray, best: np.ndarray, queries: list[tuple[float, int, str, float]]
    ) -> None:
        self.targets = targets
        self._best = best  # per target: position in ``queries``
        self._queries = queries  # (unused contribution slot, query idx, role, ts)

    def _pos(self, idx: int) -> int:
        pos = int(np.searchsorted(self.targets, idx))
        return pos if pos < self.targets.size and self.targets[pos] == idx else -1

    def __contains__(self, idx: object) -> bool:
        return isinstance(idx, int) and self._pos(idx) >= 0

    def __getitem__(self, idx: int) -> tuple[float, int, str, float]:
        pos = self._pos(idx)
        if pos < 0:
            raise KeyError(idx)
        return self._queries[int(self._best[pos])]

    def subset(self, idxs: np.ndarray) -> dict[int, tuple[float, int, str, float]]:
        """The sources of ``idxs`` that have one, as a dict (one search for a whole list)."""
        if self.targets.size == 0 or idxs.size == 0:
            return {}
        pos = np.minimum(np.searchsorted(self.targets, idxs), self.targets.size - 1)
        hit = self.targets[pos] == idxs
        best = self._best[pos[hit]].tolist()
        return {i: self._queries[b] for i, b in zip(idxs[hit].tolist(), best, strict=True)}


_NONE = np.zeros(0, dtype=np.int64)


def relation_depth(rp: RankingProfile) -> int:
    """How many of the latest queries ``relation_scores`` reads."""
    return rp.long_query_items if rp.w_relation_long > 0 else rp.query_items


def relation_scores(
    profile: UserProfile,
    catalog: Catalog,
    relations: RelatedItems,
    rp: RankingProfile,
    now_ms: float,
    rows: QueryRows | None = None,
) -> tuple[np.ndarray, np.ndarray, RelationSources]:
    """Relation strength × query recency summed over the query set, on two horizons: the
    latest ``query_items`` decayed with ``query_tau_ms`` (the session), and, when its weight is
    not 0, the deeper ``long_query_items`` decayed with ``long_query_tau_ms`` (the user's
    taste). Returns both score arrays aligned with ``sources.targets`` (sorted item indexes).
    ``rows``: the query rows already read for this burst (at least ``relation_depth`` deep)."""
    long_on = rp.w_relation_long > 0  # a zero weight: no cost, no candidates
    depth = relation_depth(rp)
    if rows is None:
        rows = read_query_rows(profile.queries, catalog, relations, depth)
    known = rows.known_within(depth)
    items, roles, stamps = rows.items[:known], rows.roles[:known], rows.stamps[:known]
    queries = [(0.0, q, role, ts) for q, role, ts in zip(items, roles, stamps, strict=True)]
    # every query's row, read once (rows in query order: sums and ties below follow it)
    targets, strengths, origin = rows.rows_within(depth)
    if targets.size == 0:
        empty = np.zeros(0)
        return empty, empty, RelationSources(_NONE, _NONE, queries)
    # in one compiled call (``relation_sums.recency_sums``): per query (row), its recency
    # ``weight · exp(-age / tau)`` on each horizon (the short one only for the latest
    # ``query_items``, the long one only when on), then per target: the sums over every
    # entry in entry order (as ``np.bincount`` adds them; an entry not kept adds its own
    # short/long, 0.0 unless the strength is negative), kept only for targets with a kept
    # entry (short > 0 or long > 0), and the best query: the largest kept contribution
    # ``short + 1e-12·long``, ties to the earliest query
    args = (
        targets,
        strengths,
        origin,
        np.array(stamps, dtype=np.float64),
        np.array([role == "buy" for role in roles], dtype=np.bool_),
        float(now_ms),
        (float(rp.query_tau_ms), float(rp.long_query_tau_ms)),
        float(rp.buy_query_weight),
        rows.known_within(rp.query_items),  # positions are sorted: those < query_items
        known if long_on else 0,
    )
    uniq, short_sum, long_sum, best, ok = recency_sums(*args, current_slots())
    if not ok:  # a target beyond the slots (they grow) or negative (ValueError)
        uniq, short_sum, long_sum, best, ok = recency_sums(*args, scratch_slots(targets))
    return short_sum, long_sum, RelationSources(uniq, best, queries)
