"""Which catalog items carry a word in their title or category path: the search signals'
inverted index (``context_signals.query_match``, ``query_candidates``), kept up to date item
by item.

Why item by item: the index used to be rebuilt from the whole catalog whenever any item's
attributes changed. A price or deal-flag edit, which changes no word, then made the next
ranking of a user with a recent query rebuild it: 242 ms on 20,000 products, 465-861 ms on
60,000 (one deal edit, then one read), the event loop stalled for every user behind it, and
again after the next edit. Now the catalog keeps a log of the items its messages touched
(``Catalog.changed_since``) and the index re-reads only those: an item whose words did not
change costs a tokenisation, one that changed moves between a few postings. A reader the log
no longer reaches back to (more than ``catalog.MAX_CHANGES`` messages unread) rebuilds in full.
"""

from __future__ import annotations

import re

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.per_catalog import PerCatalog

_TOKEN = re.compile(r"[^\W_]{2,}")
_NONE = np.zeros(0, dtype=np.int64)


def tokens(text: str) -> list[str]:
    """Lower-case word tokens of two or more letters/digits, deduplicated, in order."""
    return list(dict.fromkeys(_TOKEN.findall(text.lower())))


class TokenIndex:
    """Postings (items by word) of one catalog, and the price band of each feature id."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._read = -1  # the catalog's change position read up to (-1: never built)
        #: word -> the items carrying it (an ordered set), and the sorted array last handed out
        self._postings: dict[str, dict[int, None]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._words: list[frozenset[str]] = []  # per item, the words it is posted under
        self._bands: np.ndarray = np.zeros(0, dtype=np.int64)
        #: per feature id, the words of its category path (() for other features): a name
        #: never changes, and thousands of items share a category
        self._path_words: dict[int, tuple[str, ...]] = {}

    def items_with(self, token: str) -> np.ndarray:
        """The items carrying ``token``, ascending."""
        self._fresh()
        out = self._arrays.get(token)
        if out is None:
            posted = self._postings.get(token)
            out = np.sort(np.fromiter(posted, np.int64, len(posted))) if posted else _NONE
            self._arrays[token] = out
        return out

    def band_of_feature(self) -> np.ndarray:
        """Price band per feature id (-1: not a price band)."""
        self._fresh()
        return self._bands

    def _fresh(self) -> None:
        catalog = self._catalog
        position = catalog.change_position
        if position == self._read:  # (the vocabulary grows only with catalog messages)
            return
        changed = catalog.changed_since(self._read) if self._read >= 0 else None
        if changed is None:  # never built, or too far behind: every item
            self._build()
        else:
            for idx in dict.fromkeys(changed):
                self._reindex(idx)
        self._read = position
        self._extend_bands()

    def _build(self) -> None:
        catalog = self._catalog
        lists: dict[str, list[int]] = {}
        self._words = [self.item_words(idx) for idx in range(len(catalog))]
        for idx, words in enumerate(self._words):
            for word in words:
                lists.setdefault(word, []).append(idx)
        self._postings = {word: dict.fromkeys(items) for word, items in lists.items()}
        self._arrays = {word: np.asarray(items, dtype=np.int64) for word, items in lists.items()}

    def _reindex(self, idx: int) -> None:
        words = self._words
        if idx >= len(words):
            words.extend([frozenset()] * (idx + 1 - len(words)))
        old, new = words[idx], self.item_words(idx)
        if old == new:
            return
        postings, arrays = self._postings, self._arrays
        for word in old - new:
            posted = postings.get(word)
            if posted is not None:
                posted.pop(idx, None)
            arrays.pop(word, None)
        for word in new - old:
            postings.setdefault(word, {})[idx] = None
            arrays.pop(word, None)
        words[idx] = new

    def item_words(self, idx: int) -> frozenset[str]:
        """The words item ``idx`` is found by: its title's and its category path's."""
        catalog, cache = self._catalog, self._path_words
        words = tokens(catalog.titles[idx])
        for fid in catalog.feature_ids[idx].tolist():
            path = cache.get(fid)
            if path is None:
                name = catalog.vocab_names[fid]
                path = cache[fid] = tuple(tokens(name[9:])) if name.startswith("category:") else ()
            words.extend(path)
        return frozenset(words)

    def _extend_bands(self) -> None:
        """Bands of the feature names the vocabulary gained (it only grows)."""
        names = self._catalog.vocab_names
        known = len(self._bands)
        if known == len(names):
            return
        more = np.full(len(names) - known, -1, dtype=np.int64)
        for k, name in enumerate(names[known:]):
            if name.startswith("price_band:") and name[11:].isdigit():
                more[k] = int(name[11:])
        self._bands = np.concatenate([self._bands, more])


_INDEXES: PerCatalog[TokenIndex] = PerCatalog(TokenIndex)


def token_index(catalog: Catalog) -> TokenIndex:
    """The catalog's index (one per catalog, made at its first use)."""
    return _INDEXES.of(catalog)
