"""Human-readable reasons for a ranked item: what support staff and users read.

Reasons name things the way the shop shows them — titles, brands, category names — never
internal feature keys such as ``manufacturer:69`` (a code means nothing to a shopper: such a
feature is explained through an item the user looked at that carries it, or not at all).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Protocol

import numpy as np

from stream.domain.affinity import FeatureWeights
from stream.domain.catalog import Catalog
from stream.domain.profile import UserProfile
from stream.domain.search_filters import in_range, search_filters

#: the user's weight per feature id: ranking's sparse ``FeatureWeights``, or a dense vector
Weights = FeatureWeights | np.ndarray


class Sources(Container[int], Protocol):
    """Target item -> (contribution, query item, role, ts) of its strongest query."""

    def __getitem__(self, idx: int) -> tuple[float, int, str, float]: ...


#: how a feature key reads before its value ("brand Acme"); keys not listed read as the value
_KEY_WORDS = {"brand": "brand", "size": "size", "material": "material", "style": "style"}
#: features that say nothing a shopper would recognise
_SILENT_KEYS = frozenset({"price_band", "id", "sku", "ean", "gtin"})


@functools.lru_cache(maxsize=65_536)
def readable(feature: str) -> str | None:
    """``brand:acme`` → "brand Acme", ``category:trousers`` → "Trousers", ``colour:navy`` →
    "Navy"; None for codes (``manufacturer:69``) and internal features (``price_band:5``)."""
    key, sep, value = feature.partition(":")
    if not sep:
        return feature if feature in ("deal", "new") else None
    if key in _SILENT_KEYS or not value or not any(ch.isalpha() for ch in value):
        return None
    word = _KEY_WORDS.get(key)
    return f"{word} {value.title()}" if word else value.capitalize()


def _ago(ms: float) -> str:
    minutes = ms / 60_000
    if minutes < 1:
        return "just now"
    if minutes < 90:
        return f"{int(minutes)} min ago"
    if minutes < 48 * 60:
        return f"{int(minutes / 60)} h ago"
    return f"{int(minutes / 1440)} days ago"


@dataclass(slots=True)  # not frozen: a frozen init costs ~5x, and 20 are made per burst
class ReasonInput:
    """What the ranking knows about one shown item: each signal's contribution to its score
    (weight × value, grouped as below), the boost rules that raised it, whether it was pinned."""

    contributions: Mapping[str, float]
    boosted_by: tuple[str, ...] = ()
    pinned: bool = False


def liked_features(fids: Sequence[int], weights: Sequence[float]) -> list[int]:
    """An item's features the user likes (weight > 0), strongest first (ties: item order)."""
    liked = [(f, w) for f, w in zip(fids, weights, strict=True) if w > 0]
    liked.sort(key=lambda fw: -fw[1])
    return [f for f, _ in liked]


def liked_rows(feats: np.ndarray, liked: Weights) -> list[list[int]]:
    """``liked_features`` of every row of ``feats`` (items × feature ids) at once, given the
    user's weight per feature id. Most weights are 0: the liked entries are found in one
    numpy pass (row-major, so item order inside a row) and only they reach Python, where each
    row's few are sorted (``sort`` is stable: ties keep item order): 35 µs for a list of
    20 × 12 features, against 62 µs when every entry was filtered in Python (which had beaten
    a stable argsort of the matrix)."""
    weights = liked[feats]
    row, col = np.nonzero(weights > 0)
    rows: list[list[tuple[int, float]]] = [[] for _ in range(feats.shape[0])]
    found = zip(row.tolist(), feats[row, col].tolist(), weights[row, col].tolist(), strict=True)
    for i, f, w in found:
        rows[i].append((f, w))
    out: list[list[int]] = []
    for entries in rows:
        if len(entries) > 1:
            entries.sort(key=_WEIGHT, reverse=True)  # stable too: ties keep item order
        out.append([f for f, _ in entries])
    return out


#: sort keys in C (``itemgetter``) with ``reverse=True``, which keeps ties in order as the
#: ascending sort on a negated key did, without a Python call per entry (~90 a list)
_WEIGHT = itemgetter(1)
_FIRST = itemgetter(0)


#: the reason groups ``explain_list`` reads, in the column order of its rows
GROUPS = (
    "affinity",
    "relation",
    "popularity",
    "repeat",
    "view_return",
    "query_match",
    "price_fit",
    "freshness",
    "search_filters",
)


class ListContext:
    """What every item's reasons in one list share, made once per list instead of per item:
    the readable name of each feature id and (only when an item needs it) the user's latest
    queries with their features, for "similar to ... you viewed"."""

    def __init__(self, catalog: Catalog, profile: UserProfile, now_ms: float, feed: str) -> None:
        self.catalog = catalog
        self.profile = profile
        self.now_ms = now_ms
        self.feed = feed
        self.names = readable_names(catalog)
        self._similar: list[tuple[int, frozenset[int], str]] | None = None
        #: reason texts already written for this list: a list of 20 names ~5 distinct relation
        #: sources in its ~16 relation reasons (quick bench), and its items share liked names
        self._related: dict[tuple[float, int, str, float], str] = {}
        self._interest: dict[tuple[str, ...], str] = {}

    def liked_reason(self, idx: int, fids: Sequence[int]) -> str:
        """The affinity reason: up to three readable liked features, else a recent query
        sharing one, else a generic line."""
        names: list[str] = []  # the first three readable ones: what the reason names
        table = self.names
        for f in fids:
            name = table[f]
            if name:
                names.append(name)
                if len(names) == 3:
                    break
        if names:
            key = tuple(names)
            text = self._interest.get(key)
            if text is None:
                text = f"matches your interest in {', '.join(dict.fromkeys(names))}"
                self._interest[key] = text
            return text
        shared = set(fids)
        for q, features, text in self._recent_queries():
            if q != idx and not shared.isdisjoint(features):
                return text
        return "similar to what you looked at"

    def filters_reason(self, idx: int) -> str:
        """The filter reason: the latest search's filter values this item has, as shown."""
        wanted, vocab, table = self.profile.filters, self.catalog.vocab_names, self.names
        fids = self.catalog.feature_ids[idx].tolist()
        names = [table[f] for f in fids if vocab[f] in wanted and table[f]]
        price = self._price_range
        if price is not None and in_range(self.catalog.price[idx : idx + 1], *price)[0]:
            names.append("your price range")
        return f"matches your filters: {', '.join(names)}" if names else "matches your filters"

    @functools.cached_property
    def _price_range(self) -> tuple[float, float] | None:
        """The search's price range, read once per list and only when an item needs it."""
        return search_filters(self.profile, self.catalog).price

    def related_reason(self, source: tuple[float, int, str, float]) -> str:
        """The relation reason naming ``source`` (its strongest query), written once a list."""
        text = self._related.get(source)
        if text is None:
            _, q, role, ts = source
            verb = "bought" if role == "buy" else "viewed"
            title = self.catalog.titles[q]
            text = f"related to '{title}' you {verb} {_ago(self.now_ms - ts)}"
            self._related[source] = text
        return text

    def _recent_queries(self) -> list[tuple[int, frozenset[int], str]]:
        """The latest 20 known queries: (item, its feature ids, the reason naming it)."""
        if self._similar is None:
            catalog, out = self.catalog, []
            for item_id, role, ts in self.profile.queries[:20]:
                q = catalog.index.get(item_id)
                if q is not None:
                    verb = "bought" if role == "buy" else "viewed"
                    text = f"similar to '{catalog.titles[q]}' you {verb} {_ago(self.now_ms - ts)}"
                    out.append((q, frozenset(catalog.feature_ids[q].tolist()), text))
            self._similar = out
        return self._similar


class _Names:
    """``readable`` of every feature id, grown as the vocabulary grows (names never change)."""

    def __init__(self) -> None:
        self.table: list[str | None] = []


_NAMES: weakref.WeakKeyDictionary[Catalog, _Names] = weakref.WeakKeyDictionary()


def readable_names(catalog: Catalog) -> list[str | None]:
    """Per feature id, its ``readable`` name (None: said to nobody)."""
    names = _NAMES.get(catalog)
    if names is None:
        names = _NAMES[catalog] = _Names()
    table, vocab = names.table, catalog.vocab_names
    if len(table) < len(vocab):
        table.extend(readable(name) for name in vocab[len(table) :])
    return table


def reasons_for(
    idx: int,
    info: ReasonInput,
    liked: Sequence[int],
    catalog: Catalog,
    profile: UserProfile,
    rel_source: Sources,
    now_ms: float,
    feed: str,
) -> list[str]:
    """Why this item is here, strongest signal first (what support staff and users read).
    ``liked``: the item's features the user likes, strongest first (``liked_features``).
    One item alone; a list goes through ``explain_list``, which shares the per-list work."""
    row = [info.contributions.get(g, 0.0) for g in GROUPS]
    ctx = ListContext(catalog, profile, now_ms, feed)
    return item_reasons(idx, row, info.boosted_by, info.pinned, liked, rel_source, ctx)


def explain_list(
    idxs: Sequence[int],
    grouped: Sequence[Sequence[float]],
    boosted: Sequence[tuple[str, ...]],
    pinned: Sequence[bool],
    feats: np.ndarray,
    liked: Weights,
    rel_source: Sources,
    ctx: ListContext,
) -> list[list[str]]:
    """``reasons_for`` of every item of a list: ``grouped`` holds each item's contribution per
    reason group (``GROUPS`` order), ``feats`` its feature ids, ``liked`` the user's weight per
    feature id. Liked features are read only for the items whose affinity is positive (the
    only ones whose reason names them)."""
    need = [i for i, row in enumerate(grouped) if row[0] > 0]
    likes: list[Sequence[int]] = [()] * len(idxs)
    if need:
        for i, fids in zip(need, liked_rows(feats[need], liked), strict=True):
            likes[i] = fids
    return [
        item_reasons(idx, row, b, p, fids, rel_source, ctx)
        for idx, row, b, p, fids in zip(idxs, grouped, boosted, pinned, likes, strict=True)
    ]


def item_reasons(
    idx: int,
    row: Sequence[float],
    boosted_by: tuple[str, ...],
    pinned: bool,
    liked: Sequence[int],
    rel_source: Sources,
    ctx: ListContext,
) -> list[str]:
    """One item's reasons from its contributions per group (``GROUPS`` order)."""
    aff, rel, pop, rep, view, query, price, fresh, filters = row
    profile, now_ms = ctx.profile, ctx.now_ms
    reasons: list[tuple[float, str]] = []
    if pinned:
        reasons.append((float("inf"), "featured by the shop"))
    if query > 0:
        reasons.append((query, f"matches your search '{profile.query}'"))
    if filters > 0:
        reasons.append((filters, ctx.filters_reason(idx)))
    if view > 0:
        reasons.append((view, "you looked at this recently"))
    if rep > 0:
        n, when = profile.purchases.get(ctx.catalog.ids[idx], (1.0, now_ms))
        often = "regularly" if n >= 1.5 else "before"
        reasons.append((rep, f"you bought this {often} (last {_ago(now_ms - when)})"))
    if rel > 0 and idx in rel_source:
        reasons.append((rel, ctx.related_reason(rel_source[idx])))
    if aff > 0:
        reasons.append((aff, ctx.liked_reason(idx, liked)))
    elif aff < 0:
        reasons.append((0.0, "partly matches features you turned away from"))
    if price > 0:
        reasons.append((price, "in your usual price range"))
    if pop > 0:
        reasons.append((pop, "popular with shoppers right now"))
    if fresh > 0:
        reasons.append((fresh, "recently added to the shop"))
    if boosted_by:
        for name in dict.fromkeys(n for n in map(readable, boosted_by) if n):
            reasons.append((0.0, "on deal" if name == "deal" else f"promoted: {name}"))
    if ctx.feed == "deals_for_you" and "deal" not in boosted_by:
        reasons.append((0.0, "on deal"))
    elif ctx.feed == "new_for_you":
        reasons.append((0.0, "new in the catalog"))
    if not reasons:
        return ["in stock and not yet seen by you"]
    if len(reasons) > 1:
        reasons.sort(key=_FIRST, reverse=True)  # stable: ties keep the order above
    return [text for _, text in reasons]
