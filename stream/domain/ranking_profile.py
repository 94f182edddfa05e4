"""The ranking profile: a declarative, versioned body (a `ranking-profiles` message) as a value.

Merchandisers change ranking by publishing a body, not by deploying code, so everything a list
depends on — signal weights, filters, boosts and buries by item feature, pins, category
exclusions, diversity — is a field here, parsed from and written back to the JSON body that
``schemas/ranking-profiles.schema.json`` describes. Validation against that schema lives at the
edge (``stream.adapters.ranking_profiles.parse_ranking_profile``); ``from_dict`` only maps an
already valid body onto fields, and refuses the few things the types here cannot hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from stream.domain.features import norm

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
    "query_match": "w_query_match",
    "price_fit": "w_price_fit",
    "freshness": "w_freshness",
    "relation_recent": "w_relation_recent",
    "search_filters": "w_search_filters",
}
#: item flags that boosts may name like features (they are not attributes of the item)
FLAG_FEATURES = ("deal", "new")
#: context keys a boost's ``when`` may condition on (``clicks.context``)
CONTEXT_KEYS = ("device", "locale", "source")


def normalize_feature(name: str) -> str:
    """``"brand:Acme "`` → ``"brand:acme"``: the spelling ``Catalog.features_of`` yields (see
    ``features.attribute_features``), so a merchandiser may write values as the shop shows them."""
    key, sep, value = name.partition(":")
    if not sep:
        return norm(key)
    return f"{norm(key)}:{norm(value)}"


def category_feature(name: str) -> str:
    """A category to exclude, given as ``Trousers`` or ``category:Trousers``."""
    feature = normalize_feature(name)
    return feature if feature.startswith("category:") else f"category:{norm(name)}"


@dataclass(frozen=True, slots=True)
class Boost:
    """Multiply the score of items carrying ``feature`` by ``factor`` (0 removes them), only
    when the user's latest context matches every ``when`` entry (empty: always)."""

    feature: str
    factor: float
    when: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Boost:
        try:
            feature, factor = body["feature"], body["factor"]
        except (KeyError, TypeError):
            raise ValueError(f"a boost needs 'feature' and 'factor', got {body!r}") from None
        if not isinstance(feature, str) or not feature.strip():
            raise ValueError(f"boost feature must be a non-empty string, got {feature!r}")
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 0:
            raise ValueError(f"boost factor must be a number >= 0, got {factor!r}")
        when = body.get("when") or {}
        return cls(
            normalize_feature(feature),
            float(factor),
            tuple(sorted((str(k), norm(v)) for k, v in when.items())),
        )

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"feature": self.feature, "factor": self.factor}
        if self.when:
            body["when"] = dict(self.when)
        return body

    def applies(self, context: Mapping[str, str]) -> bool:
        return all(norm(context.get(k, "")) == v for k, v in self.when)


@dataclass(frozen=True, slots=True)
class FeedRules:
    """The business rules of one feed: boosts, buries, pins (placed first, in this order) and
    excluded categories (``category:<name>`` features; a parent excludes its children)."""

    boosts: tuple[Boost, ...] = ()
    buries: tuple[Boost, ...] = ()
    pins: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()

    @property
    def factors(self) -> tuple[Boost, ...]:
        return self.boosts + self.buries

    def merged(self, body: Mapping[str, Any]) -> FeedRules:
        """These rules with whatever ``body`` (a body or a per-feed override) sets replaced."""
        out = self
        if "boosts" in body:
            out = replace(out, boosts=tuple(Boost.from_dict(b) for b in body["boosts"] or ()))
        if "buries" in body:
            out = replace(out, buries=tuple(Boost.from_dict(b) for b in body["buries"] or ()))
        if "pins" in body:
            out = replace(out, pins=tuple(dict.fromkeys(str(p) for p in body["pins"] or ())))
        filters = body.get("filters") or {}
        if "exclude_categories" in filters:
            names = filters["exclude_categories"] or ()
            out = replace(out, exclude_categories=tuple(category_feature(n) for n in names))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "boosts": [b.to_dict() for b in self.boosts],
            "buries": [b.to_dict() for b in self.buries],
            "pins": list(self.pins),
            "filters": {"exclude_categories": list(self.exclude_categories)},
        }


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


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
    #: at most this many items of one brand (``brand:*`` feature); None: no cap
    max_per_brand: int | None = None
    #: MMR trade-off between score (1.0: pure score order) and novelty against the items
    #: already chosen (feature overlap)
    mmr_lambda: float = 1.0
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
    #: token overlap of the latest search/click query with the item's title and category,
    #: the query fading over ``query_context_tau_ms``
    w_query_match: float = 1.0
    query_context_tau_ms: float = 2 * 3600 * 1000.0
    #: closeness of the item's price band to the user's typical one (0: off)
    w_price_fit: float = 0.0
    #: recency of the item's first catalog message (0: off)
    w_freshness: float = 0.0
    freshness_tau_ms: float = 14 * 24 * 3600 * 1000.0
    #: relations of the latest ``query_items``, each decayed by ``recent_decay ** n`` for a
    #: query ``n`` events back (``stream.domain.recent_relation``): position in a burst
    w_relation_recent: float = 1.0
    recent_decay: float = 0.8
    #: share of the latest search's filter attributes the item satisfies, fading like the
    #: query: filters are constraints the shopper set by hand, so a full match outweighs
    #: the query text (``w_query_match``)
    w_search_filters: float = 2.0
    #: items the user viewed but did not buy ("seen") that the propensities let back: "after"
    #: ranks them behind the unseen ones (at most ``seen_tail`` of them, more only if unseen
    #: items run out), "mixed" ranks them by score among the rest. Never counted by the caps.
    seen_placement: str = "after"
    seen_tail: int = 5
    #: how the weights were obtained ("hand" or the fit's slice), reported by `eval`
    fitted_on: str = "hand"
    #: business rules for every feed, and per-feed overrides of them
    rules: FeedRules = field(default_factory=FeedRules)
    feed_rules: tuple[tuple[str, FeedRules], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def rules_for(self, feed: str) -> FeedRules:
        """The rules of ``feed``: its override if the body has one, else the body's."""
        for name, rules in self.feed_rules:
            if name == feed:
                return rules
        return self.rules

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
                self.w_query_match,
                self.w_price_fit,
                self.w_freshness,
                self.w_relation_recent,
                self.w_search_filters,
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """A `ranking-profiles` body that ``from_dict`` reads back to an equal profile."""
        skip = {*WEIGHT_KEYS.values(), "rules", "feed_rules"}
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        body["weights"] = {key: getattr(self, attr) for key, attr in WEIGHT_KEYS.items()}
        rules = self.rules.to_dict()
        filters = rules.pop("filters")
        body.update(rules)
        body["filters"] = filters  # the filter_* switches are top-level fields already
        if self.feed_rules:
            body["feeds"] = {name: rules.to_dict() for name, rules in self.feed_rules}
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> RankingProfile:
        """Build from a message body; ``weights``/``filters``/``diversity``/``boosts``/``buries``/
        ``pins``/``feeds`` map onto fields. Raises ValueError on a rule it cannot read."""
        known = {f.name for f in fields(cls)} - {"rules", "feed_rules"}
        values: dict[str, Any] = {k: v for k, v in body.items() if k in known}
        values.update(_weights(body.get("weights") or {}))
        filters = body.get("filters") or {}
        for key in ("returned", "just_bought"):
            if key in filters:
                values[f"filter_{key}"] = bool(filters[key])
        for key in ("purchased", "seen"):
            if key in filters:
                values[f"filter_{key}"] = _optional_bool(filters[key])
        values.update(_diversity(body.get("diversity") or {}))
        rules = FeedRules().merged(body)
        values["rules"] = rules
        values["feed_rules"] = _feed_rules(rules, body.get("feeds") or {})
        if values.get("seen_placement", "after") not in ("after", "mixed"):
            raise ValueError(f"seen_placement must be 'after' or 'mixed': {values!r}")
        return cls(**values)


def _weights(weights: Mapping[str, Any]) -> dict[str, float]:
    return {attr: float(weights[key]) for key, attr in WEIGHT_KEYS.items() if key in weights}


def _diversity(diversity: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "max_per_category" in diversity:
        out["max_per_category"] = int(diversity["max_per_category"])
    if "max_per_brand" in diversity:
        cap = diversity["max_per_brand"]
        out["max_per_brand"] = None if cap is None else int(cap)
    if "mmr_lambda" in diversity:
        lam = float(diversity["mmr_lambda"])
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"diversity.mmr_lambda must be in [0, 1], got {lam}")
        out["mmr_lambda"] = lam
    return out


def _feed_rules(base: FeedRules, feeds: Mapping[str, Any]) -> tuple[tuple[str, FeedRules], ...]:
    unknown = sorted(set(feeds) - set(FEEDS))
    if unknown:
        raise ValueError(f"unknown feed(s) {unknown} in 'feeds': use {', '.join(FEEDS)}")
    return tuple((name, base.merged(feeds[name] or {})) for name in FEEDS if name in feeds)
