"""Vectorised business rules over one scored candidate set: boosts, buries, exclusions, pins.

A profile names item features (``brand:acme``, ``category:trousers``, ``deal``); the catalog
answers "which items carry it" as a boolean mask over all items, kept up to date item by item
(``FeatureMasks``), so applying any number of rules to a few hundred candidates is a handful
of numpy gathers and products — no Python loop per item, whatever the rules say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from stream.domain.catalog import PAD, Catalog
from stream.domain.per_catalog import PerCatalog
from stream.domain.ranking_profile import Boost, FeedRules


class FeatureMasks:
    """Per-feature item masks of one catalog, made at their first use and kept up to date
    item by item from the catalog's change log (``Catalog.changed_since``): they were dropped
    at every catalog message, so under a feed of price and deal edits every ranking rebuilt
    the masks its rules name over the whole catalog. ``brand_of``'s table depends on feature
    names only, which never change: it only grows with the vocabulary."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._read = catalog.change_position  # the change log's position the masks follow
        self._masks: dict[str, np.ndarray] = {}
        self._brand_of: np.ndarray | None = None

    def _fresh(self) -> None:
        catalog = self._catalog
        position = catalog.change_position
        if position == self._read:
            return
        changed = catalog.changed_since(self._read)
        self._read = position
        if changed is None:  # too far behind: made again at their next use
            self._masks.clear()
            return
        idx = np.fromiter(dict.fromkeys(changed), dtype=np.int64)
        n = len(catalog)
        for feature, mask in self._masks.items():
            out = np.zeros(n, dtype=bool)  # (a new array: one handed out stays as it was)
            out[: mask.size] = mask
            out[idx] = self._carry(feature, idx)
            self._masks[feature] = out

    def _carry(self, feature: str, idx: np.ndarray) -> np.ndarray:
        """Whether items ``idx`` carry ``feature`` (a flag, or a feature id in their row)."""
        catalog = self._catalog
        if feature == "deal":
            return catalog.deal[idx]
        if feature == "new":
            return catalog.new[idx]
        fid = catalog.vocab.get(feature)
        if fid in (None, PAD):
            return np.zeros(idx.size, dtype=bool)
        return (catalog.feature_ids[idx] == fid).any(axis=1)

    def mask(self, feature: str) -> np.ndarray:
        """Items (dense indexes) carrying ``feature``; the flags ``deal``/``new`` count too."""
        self._fresh()
        cached = self._masks.get(feature)
        if cached is not None:
            return cached
        catalog = self._catalog
        n = len(catalog)
        if feature == "deal":
            out = catalog.deal[:n].copy()
        elif feature == "new":
            out = catalog.new[:n].copy()
        else:
            out = np.zeros(n, dtype=bool)
            fid = catalog.vocab.get(feature)
            if fid not in (None, PAD):
                out[catalog.members_of(fid)] = True
        self._masks[feature] = out
        return out

    def any_of(self, features: Iterable[str], cands: np.ndarray) -> np.ndarray:
        """Candidates carrying at least one of ``features``."""
        hit = np.zeros(cands.size, dtype=bool)
        for feature in features:
            hit |= self.mask(feature)[cands]
        return hit

    def brand_of(self, cands: np.ndarray) -> np.ndarray:
        """Feature id of each candidate's first ``brand:*`` feature (PAD when it has none)."""
        self._fresh()
        catalog = self._catalog
        names, known = catalog.vocab_names, 0 if self._brand_of is None else self._brand_of.size
        if self._brand_of is None or known < len(names):
            more = np.array([name.startswith("brand:") for name in names[known:]], dtype=bool)
            self._brand_of = (
                more if self._brand_of is None else np.concatenate([self._brand_of, more])
            )
        feats = catalog.feature_ids[cands]
        is_brand = self._brand_of[feats]
        first = np.argmax(is_brand, axis=1)
        brand = feats[np.arange(cands.size), first]
        return np.where(is_brand.any(axis=1), brand, PAD)


_MASKS: PerCatalog[FeatureMasks] = PerCatalog(FeatureMasks)


def masks_of(catalog: Catalog) -> FeatureMasks:
    """The catalog's masks, kept as long as the catalog lives (one per worker)."""
    return _MASKS.of(catalog)


def applying(rules: Iterable[Boost], context: Mapping[str, str]) -> list[Boost]:
    """The rules that change a score now (factor not 1, applying in context): most feeds
    have none, and then no factor needs computing (``ScoredSet.select``)."""
    return [rule for rule in rules if rule.factor != 1.0 and rule.applies(context)]


def boost_factors(
    rules: Iterable[Boost], masks: FeatureMasks, cands: np.ndarray, context: Mapping[str, str]
) -> np.ndarray:
    """Product of the factors of every rule that applies (in context) to each candidate."""
    factors = np.ones(cands.size, dtype=np.float64)
    for rule in rules:
        if rule.factor != 1.0 and rule.applies(context):
            factors[masks.mask(rule.feature)[cands]] *= rule.factor
    return factors


def apply_factors(score: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """A factor above 1 moves an item up whatever the sign of its score (a negative score is
    divided), below 1 moves it down; 0 is handled by the caller as removal."""
    safe = np.where(factors > 0, factors, 1.0)
    return np.where(score >= 0, score * safe, score / safe)


def excluded(rules: FeedRules, masks: FeatureMasks, cands: np.ndarray) -> np.ndarray:
    """Candidates in an excluded category (any level of their category path)."""
    if not rules.exclude_categories:
        return np.zeros(cands.size, dtype=bool)
    return masks.any_of(rules.exclude_categories, cands)


def pin_positions(rules: FeedRules, catalog: Catalog, cands: np.ndarray) -> np.ndarray:
    """Positions in ``cands`` (sorted) of the feed's pins, in pin order; pins that are not
    candidates (unknown, or already filtered out) are simply absent — a pin never brings back
    an item the filters removed."""
    idx = [catalog.index[p] for p in rules.pins if p in catalog.index]
    if not idx or cands.size == 0:
        return np.zeros(0, dtype=np.int64)
    wanted = np.asarray(idx, dtype=np.int64)
    pos = np.searchsorted(cands, wanted)
    hit = (pos < cands.size) & (cands[np.minimum(pos, cands.size - 1)] == wanted)
    return pos[hit]
