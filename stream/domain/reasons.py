"""Human-readable reasons for a ranked item: what support staff and users read.

Reasons name things the way the shop shows them — titles, brands, category names — never
internal feature keys such as ``manufacturer:69`` (a code means nothing to a shopper: such a
feature is explained through an item the user looked at that carries it, or not at all).
"""

from __future__ import annotations

import functools
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Protocol

import numpy as np

from stream.domain.affinity import FeatureWeights
from stream.domain.catalog import Catalog
from stream.domain.diversity_kernel import liked_order
from stream.domain.per_catalog import PerCatalog
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
    user's weight per feature id: one compiled pass (``diversity_kernel.liked_order``), ~9 µs
    for a list of 20 × 12 features where a numpy pass (a dozen calls at ~1 µs each, whatever
    the size) and a Python sort of each row's few took ~25 µs, and a dict of the weights
    read in Python ~22 µs."""
    if isinstance(liked, np.ndarray):
        ids = np.flatnonzero(liked > 0)
        values = liked[ids]
    else:
        ids, values = liked.ids, liked.values
    order, counts = liked_order(feats, ids, values)
    return [row[:n] for row, n in zip(order.tolist(), counts.tolist(), strict=True)]


#: sort key in C (``itemgetter``) with ``reverse=True``, which keeps ties in order as the
#: ascending sort on a negated key did, without a Python call per entry
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_FIRST_PLACE = float("inf")  # a pinned item's reason comes first
_PINNED = "featured by the shop"


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
        #: the feed's own line (read per item: a flag, not a string comparison)
        self.deals, self.new = feed == "deals_for_you", feed == "new_for_you"
        self.names = readable_names(catalog)
        self._similar: list[tuple[int, frozenset[int], str]] | None = None
        #: relation texts already written for this list: a list of 20 names ~5 distinct
        #: relation sources in its ~16 relation reasons (quick bench)
        self._related: dict[tuple[float, int, str, float], str] = {}

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
            return _interest(tuple(names))
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

    def repeat_reason(self, idx: int) -> str:
        """The repeat reason: how often and how long ago the user bought this item."""
        now_ms = self.now_ms
        n, when = self.profile.purchases.get(self.catalog.ids[idx], (1.0, now_ms))
        often = "regularly" if n >= 1.5 else "before"
        return f"you bought this {often} (last {_ago(now_ms - when)})"

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


@functools.lru_cache(maxsize=65_536)
def _interest(names: tuple[str, ...]) -> str:
    """The text naming up to three liked features. Kept across lists, not per list: a user's
    liked names recur in every list they get (a hit ~90 ns, a write ~490 ns)."""
    return f"matches your interest in {', '.join(dict.fromkeys(names))}"


class _Names:
    """``readable`` of every feature id, grown as the vocabulary grows (names never change)."""

    def __init__(self) -> None:
        self.table: list[str | None] = []


_NAMES: PerCatalog[_Names] = PerCatalog(lambda _: _Names())


def readable_names(catalog: Catalog) -> list[str | None]:
    """Per feature id, its ``readable`` name (None: said to nobody)."""
    table, vocab = _NAMES.of(catalog).table, catalog.vocab_names
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
    feature id. Only the items whose affinity is positive name their liked features (the
    compiled pass reads every row: cheaper than gathering the rows of the others out)."""
    likes = liked_rows(feats, liked)
    return [
        item_reasons(idx, row, b, p, fids if row[0] > 0 else (), rel_source, ctx)
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
    reasons: list[tuple[float, str]] = [(_FIRST_PLACE, _PINNED)] if pinned else []
    add = reasons.append
    if query > 0:
        add((query, f"matches your search '{ctx.profile.query}'"))
    if filters > 0:
        add((filters, ctx.filters_reason(idx)))
    if view > 0:
        add((view, "you looked at this recently"))
    if rep > 0:
        add((rep, ctx.repeat_reason(idx)))
    if rel > 0 and idx in rel_source:
        add((rel, ctx.related_reason(rel_source[idx])))
    if aff > 0:
        add((aff, ctx.liked_reason(idx, liked)))
    elif aff < 0:
        add((0.0, "partly matches features you turned away from"))
    if price > 0:
        add((price, "in your usual price range"))
    if pop > 0:
        add((pop, "popular with shoppers right now"))
    if fresh > 0:
        add((fresh, "recently added to the shop"))
    if boosted_by:
        for name in dict.fromkeys(n for n in map(readable, boosted_by) if n):
            add((0.0, "on deal" if name == "deal" else f"promoted: {name}"))
    if ctx.deals:
        if "deal" not in boosted_by:
            add((0.0, "on deal"))
    elif ctx.new:
        add((0.0, "new in the catalog"))
    if not reasons:
        return ["in stock and not yet seen by you"]
    if len(reasons) > 1:
        reasons.sort(key=_FIRST, reverse=True)  # stable: ties keep the order above
    return list(map(_SECOND, reasons))
