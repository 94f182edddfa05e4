"""Signals from the user's current context and the item's own facts: query match, price fit,
freshness — each roughly in [0, 1], each a column of ``signals.SIGNALS``.

* ``query_match``: share of the tokens of the user's latest query (a search, or the query a
  click came from, ``clicks.context.query``) found in the item's title or category path,
  fading with the query's age — what the user typed is the strongest intent there is.
* ``search_filters`` (``stream.domain.search_filters``): share of the latest search's filters
  the item meets, fading like the query: a shopper who filtered for navy in size M under 60
  wants navy in M under 60 next, in any category.
* ``price_fit``: closeness of the item's price band (``price_band:N``, log2 of the price) to
  the user's typical band, the affinity-weighted mean band of what they interacted with.
  Zero for items without a price and for users without price history.
* ``freshness``: recency of the item's first catalog message, decaying over
  ``freshness_tau_ms``; zero when the catalog message had no ``ts``.
"""

from __future__ import annotations

import math

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.profile import UserProfile
from stream.domain.search_filters import NO_FILTERS, SearchFilters, filter_hits, filter_match
from stream.domain.token_index import token_index as token_index
from stream.domain.token_index import tokens as tokens

#: a user's query contributes at most this many tokens (longer text is noise here)
MAX_QUERY_TOKENS = 12


def query_weight(profile: UserProfile, now_ms: float, tau_ms: float) -> float:
    """How much the latest query and filters still count: 1 when just typed, fading with age."""
    if not profile.query and not profile.filters:
        return 0.0
    return math.exp(-max(0.0, now_ms - profile.query_ts) / tau_ms)


def query_match(
    profile: UserProfile, catalog: Catalog, cands: np.ndarray, weight: float
) -> np.ndarray:
    """Share of the query's tokens each candidate carries, times the query's weight."""
    out = np.zeros(cands.size, dtype=np.float64)
    words = tokens(profile.query)[:MAX_QUERY_TOKENS]
    if weight <= 0 or not words or cands.size == 0:
        return out
    index = token_index(catalog)
    for word in words:
        out += np.isin(cands, index.items_with(word), assume_unique=True)
    return out * (weight / len(words))


def query_candidates(
    profile: UserProfile, catalog: Catalog, k: int, filters: SearchFilters = NO_FILTERS
) -> np.ndarray:
    """The ``k`` items matching the most query tokens and search filters, the most popular
    first among equals: what the user searched for must be a candidate even when nothing else
    would bring it. Without tokens the hits come from the filters (``filter_hits``)."""
    words = tokens(profile.query)[:MAX_QUERY_TOKENS]
    if (not words and not len(filters)) or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if words:
        index = token_index(catalog)
        hits = np.unique(np.concatenate([index.items_with(w) for w in words]))
    else:
        hits = filter_hits(filters, catalog, k)
    hits = hits[catalog.eligible(hits)]
    if hits.size > k:
        key = catalog.popularity[hits] + catalog.tiebreak[hits]
        if len(filters):  # each filter met outranks any popularity
            key = key / (1.0 + float(key.max())) + filter_match(
                filters, catalog, hits, len(filters)
            )
        hits = hits[np.argpartition(-key, k - 1)[:k]]
    return hits


def price_fit(catalog: Catalog, cands: np.ndarray, affinity: np.ndarray) -> np.ndarray:
    """``exp(-|band − typical band| / 1.5)``: one band (×2 in price) away ≈ 0.5."""
    out = np.zeros(cands.size, dtype=np.float64)
    if cands.size == 0:
        return out
    bands = token_index(catalog).band_of_feature()
    if bands.size < affinity.size:  # features added since the index was built
        bands = np.concatenate([bands, np.full(affinity.size - bands.size, -1)])
    priced = (bands[: affinity.size] >= 0) & (affinity > 0)
    total = float(affinity[priced].sum())
    if total <= 0:
        return out
    typical = float((affinity[priced] * bands[: affinity.size][priced]).sum()) / total
    item_band = bands[catalog.feature_ids[cands]].max(axis=1)
    has = item_band >= 0
    out[has] = np.exp(-np.abs(item_band[has] - typical) / 1.5)
    return out


def freshness(catalog: Catalog, cands: np.ndarray, now_ms: float, tau_ms: float) -> np.ndarray:
    """Recency of each candidate's first appearance in the catalog (0 when unknown)."""
    first = catalog.first_seen[cands]
    age = np.maximum(0.0, now_ms - first.astype(np.float64))
    return np.where(first > 0, np.exp(-age / tau_ms), 0.0)
