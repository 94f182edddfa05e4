"""The latest search's filters as something an item meets or not: the ``search_filters`` signal.

A search's filters are stored in the profile as feature names (``stream.domain.features``:
``colour:navy``, ``size:m``, ``price_max:60``). Here they become one *group* per attribute,
met by an item carrying any of the group's values (``colour: [navy, black]``), plus a price
range from ``price_min`` / ``price_max`` met by the item's numeric ``price``. An item's signal
is the share of groups it meets. Attributes no item carries (``in_stock``) are left out: no
item could meet them, so they would only dilute the share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.features import PRICE_BOUNDS
from stream.domain.profile import UserProfile


@dataclass(frozen=True)
class SearchFilters:
    """Per attribute the feature ids that meet it; the price range (NaN: open end) if any."""

    groups: list[np.ndarray] = field(default_factory=list)
    price: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.groups) + (self.price is not None)


NO_FILTERS = SearchFilters()


def search_filters(profile: UserProfile, catalog: Catalog) -> SearchFilters:
    """The profile's latest search filters against this catalog's vocabulary."""
    if not profile.filters:
        return NO_FILTERS
    groups: dict[str, list[int]] = {}
    bounds = [math.nan, math.nan]
    for feature in profile.filters:
        key, _, value = feature.partition(":")
        if key in PRICE_BOUNDS:
            bounds[PRICE_BOUNDS[key]] = _number(value)
            continue
        fid = catalog.vocab.get(feature)
        if fid is not None:
            groups.setdefault(key, []).append(fid)
    arrays = [np.asarray(fids, dtype=np.int64) for fids in groups.values()]
    ranged = not (math.isnan(bounds[0]) and math.isnan(bounds[1]))
    return SearchFilters(arrays, (bounds[0], bounds[1]) if ranged else None)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def filter_match(
    filters: SearchFilters, catalog: Catalog, cands: np.ndarray, weight: float
) -> np.ndarray:
    """Share of the filter groups each candidate meets, times ``weight`` (the query's)."""
    out = np.zeros(cands.size, dtype=np.float64)
    if weight <= 0 or not len(filters) or cands.size == 0:
        return out
    if filters.groups:
        feats = catalog.feature_ids[cands]
        for fids in filters.groups:
            out += np.isin(feats, fids).any(axis=1)
    if filters.price is not None:
        out += in_range(catalog.price[cands], *filters.price)
    return out * (weight / len(filters))


def in_range(price: np.ndarray, low: float, high: float) -> np.ndarray:
    """Prices within ``[low, high]`` (NaN bounds are open); an unknown price never is."""
    ok = ~np.isnan(price)
    if not math.isnan(low):
        ok &= price >= low
    if not math.isnan(high):
        ok &= price <= high
    return ok


def filter_hits(filters: SearchFilters, catalog: Catalog, k: int) -> np.ndarray:
    """Items that may meet the filters when the search had no text: each filter value's ``k``
    most popular items, or under a price range alone the ``4k`` most popular items (bounded
    reads, whatever the catalog's size)."""
    tops = [catalog.top_for_feature(fid, k) for fids in filters.groups for fid in fids.tolist()]
    if not tops:
        tops.append(catalog.popular(4 * k))
    return np.unique(np.concatenate(tops))
