"""Item attributes → sparse feature names (``brand:acme``, ``size:m``, ``price_band:3``).

One function names features for catalog items *and* for search filters, so a filter
``{"size": "M"}`` lands on exactly the feature the items carry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

#: Attributes that never become features (free text or numbers handled separately).
_SKIP = frozenset({"title", "description", "price", "image", "url"})
MAX_FEATURES_PER_ITEM = 12


def norm(value: object) -> str:
    """Canonical text of an attribute value: trimmed, lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def price_band(price: float) -> int:
    """Log-scale band (×2 per band) so "cheap" vs "premium" is one feature, not a number."""
    if price <= 0:
        return 0
    return max(0, min(15, math.floor(math.log2(price)) + 3))


def attribute_features(name: str, value: object) -> list[str]:
    """Feature names for one attribute; lists give one feature per element."""
    key = norm(name)
    if key == "price" or key == "price_band":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return [f"price_band:{price_band(float(value)) if key == 'price' else int(value)}"]
        return []
    if key in _SKIP or value is None:
        return []
    if key == "category" and isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        return [f"{key}:{norm(v)}" for v in value if v is not None and norm(v)]
    if isinstance(value, Mapping):
        return []
    text = norm(value)
    return [f"{key}:{text}"] if text else []


def item_features(attributes: Mapping[str, object] | None) -> list[str]:
    """All features of a catalog item, deduplicated, bounded to MAX_FEATURES_PER_ITEM."""
    if not attributes:
        return []
    seen: dict[str, None] = {}
    for name, value in attributes.items():
        for feature in attribute_features(name, value):
            seen.setdefault(feature, None)
    return list(seen)[:MAX_FEATURES_PER_ITEM]


#: search filter keys that bound the item's ``price`` (``stream.domain.search_filters``): no item
#: carries them as a feature, so they never enter affinities
PRICE_BOUNDS = {"price_min": 0, "price_max": 1}


def is_price_bound(feature: str) -> bool:
    return feature.partition(":")[0] in PRICE_BOUNDS


def filter_features(filters: Mapping[str, object] | None) -> list[str]:
    """Features a search filter asks for (``{"colour": ["navy", "black"]}`` → two features)."""
    if not filters:
        return []
    out: list[str] = []
    for name, value in filters.items():
        out.extend(attribute_features(name, value))
    return out


def leaf_category(features: Iterable[str]) -> str | None:
    """Most specific category feature (the end of the path), used by diversity caps: a list of
    twenty groceries is diverse only if it is not three kinds of string cheese."""
    leaf = None
    for feature in features:
        if feature.startswith("category:"):
            leaf = feature
    return leaf
