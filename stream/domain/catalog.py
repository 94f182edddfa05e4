"""Catalog read model: item features, stock, flags and popularity in preallocated numpy arrays.

Every worker holds a full replica (fed from the `catalog` and `stock` topics), so ranking never
waits on a remote lookup. Scoring gathers rows of ``feature_ids`` and sums a dense weight vector,
which is ~100x cheaper than Python dict loops over item attributes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from stream.domain.features import MAX_FEATURES_PER_ITEM, item_features, leaf_category
from stream.domain.top_lists import Arrays, GrowingTops, PopularTops

PAD = 0  # feature id 0 is padding: its weight is always 0
#: `catalog` messages kept in the change log (``Catalog.changed_since``): 8 bytes each
MAX_CHANGES = 1 << 16
_OVERALL = np.zeros(1, dtype=np.int64)  # the popular list's row in its table


@dataclass(frozen=True, slots=True)
class StockChange:
    """What a stock update did, so the worker knows whom to refresh."""

    index: int
    went_out: bool
    came_back: bool


def tiebreak(item_id: str) -> float:
    """In [0, 1e-6): far below any real score difference, identical on every worker."""
    return zlib.crc32(item_id.encode()) / 2**32 * 1e-6


class Catalog:
    """Growable arrays indexed by a dense item index; ids map to indexes through a dict."""

    def __init__(self, capacity: int = 1024) -> None:
        self.ids: list[str] = []
        self.titles: list[str] = []
        self.index: dict[str, int] = {}
        self.vocab: dict[str, int] = {"": PAD}
        self.vocab_names: list[str] = [""]
        self.feature_ids = np.zeros((capacity, MAX_FEATURES_PER_ITEM), dtype=np.int32)
        self.category = np.zeros(capacity, dtype=np.int32)
        self.available = np.ones(capacity, dtype=np.int64)
        self.deal = np.zeros(capacity, dtype=bool)
        self.new = np.zeros(capacity, dtype=bool)
        self.deleted = np.zeros(capacity, dtype=bool)
        self.popularity = np.zeros(capacity, dtype=np.float64)
        #: a tiny per-item constant from the item id: breaks score ties the same way on every
        #: worker, whereas dense indexes depend on the order each replica read the catalog in
        self.tiebreak = np.zeros(capacity, dtype=np.float64)
        #: ``ts`` of the first catalog message of each item (0: unknown), for freshness
        self.first_seen = np.zeros(capacity, dtype=np.int64)
        #: the ``price`` attribute as a number (NaN: none), for price-range search filters
        self.price = np.full(capacity, np.nan, dtype=np.float64)
        #: per feature id, the items carrying it, in the order they got it: a dict used as an
        #: ordered set, so an update removes an item in O(1) (a list's ``remove`` scanned the
        #: whole member list: 271 µs an update for the demo's 23,652 products re-published in
        #: another order, where a feature holds 19,201 of them; quadratic in a bulk import)
        self.items_by_feature: dict[int, dict[int, None]] = {}
        #: bumps on every change that can alter who may be listed (new items, their features,
        #: deletes, stock going out or coming back); each rebuilds the lists concerned
        #: (``_relist``)
        self.version = 0
        #: the items of every `catalog` message since position ``_changes_at``, in order, so a
        #: read model over titles and features (``token_index``) updates only those items
        #: instead of the whole catalog; kept at most ``MAX_CHANGES`` (older: rebuild)
        self._changes: list[int] = []
        self._changes_at = 0
        #: exact most-popular lists, overall and per feature (``stream.domain.top_lists``)
        self._tops = GrowingTops()  # the log of grown items the lists are merged with
        self._popular = PopularTops(self._tops, 100, by_feature=False)  # one row: 0
        self._by_feature = PopularTops(self._tops, 50, by_feature=True)  # row r: feature r
        self._epoch = 0  # popularity set from a snapshot: every popular list is rebuilt

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.index

    # -- updates -------------------------------------------------------------------------------
    def _grow(self) -> None:
        cap = self.available.shape[0] * 2
        for name in (
            "feature_ids",
            "category",
            "available",
            "deal",
            "new",
            "deleted",
            "popularity",
            "tiebreak",
            "first_seen",
            "price",
        ):
            old = getattr(self, name)
            shape = (cap, *old.shape[1:])
            fill = 1 if name == "available" else np.nan if name == "price" else 0
            new = np.full(shape, fill, dtype=old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def _feature_id(self, name: str) -> int:
        fid = self.vocab.get(name)
        if fid is None:
            fid = self.vocab[name] = len(self.vocab_names)
            self.vocab_names.append(name)
        return fid

    def category_name(self, item_id: str) -> str | None:
        """The item's leaf category name (None without attributes or when unknown); reads the
        arrays at each call, as they are replaced when the catalog grows."""
        idx = self.index.get(item_id)
        if idx is None:
            return None
        cat = self.category.item(idx)  # a Python int at once (int(category[idx]): 1.5x)
        return None if cat == PAD else self.vocab_names[cat]

    def upsert(self, message: Mapping[str, object]) -> int:
        """Apply a `catalog` message (create, update or delete); returns the item's index."""
        item_id = str(message["item_id"])
        idx = self.index.get(item_id)
        before: tuple[list[int], bool] | None = None  # an existing item's features and delete
        if idx is None:
            idx = len(self.ids)
            if idx >= self.available.shape[0]:
                self._grow()
            self.ids.append(item_id)
            self.titles.append("")
            self.index[item_id] = idx
            self.tiebreak[idx] = tiebreak(item_id)
            ts = message.get("ts")
            self.first_seen[idx] = ts if isinstance(ts, int) and ts > 0 else 0
        else:
            held = [fid for fid in self.feature_ids[idx].tolist() if fid != PAD]  # (Python ints)
            before = held, bool(self.deleted[idx])
            for fid in held:
                members = self.items_by_feature.get(fid)
                if members is not None:
                    members.pop(idx, None)
        attributes = message.get("attributes")
        features = item_features(attributes if isinstance(attributes, Mapping) else None)
        row = [self._feature_id(f) for f in features]
        self.feature_ids[idx] = 0
        self.feature_ids[idx, : len(row)] = row
        for fid in row:
            self.items_by_feature.setdefault(fid, {})[idx] = None
        price = attributes.get("price") if isinstance(attributes, Mapping) else None
        numeric = isinstance(price, int | float) and not isinstance(price, bool)
        self.price[idx] = float(price) if numeric else np.nan  # type: ignore[arg-type]
        cat = leaf_category(features)
        self.category[idx] = self.vocab[cat] if cat else PAD
        title = message.get("title")
        self.titles[idx] = str(title) if title else item_id
        flags = message.get("flags")
        flags = flags if isinstance(flags, Mapping) else {}
        self.deal[idx] = bool(flags.get("deal", False))
        self.new[idx] = bool(flags.get("new", False))
        self.deleted[idx] = bool(message.get("deleted", False))
        self._note_change(idx)
        if before != (row, bool(self.deleted[idx])):
            # who may be listed changed (a new item, other features, a delete or a restore) in
            # the lists of its features, old and new; an edit of price, title, flags or
            # attributes that map to the same features changes no list
            self.version += 1
            self._relist([*(before[0] if before else ()), *row])
        return idx

    def _note_change(self, idx: int) -> None:
        changes = self._changes
        changes.append(idx)
        if len(changes) > MAX_CHANGES:  # the older half goes: a reader behind it rebuilds
            half = len(changes) // 2
            del changes[:half]
            self._changes_at += half

    @property
    def change_position(self) -> int:
        """How many `catalog` messages this catalog has applied (``changed_since``'s clock)."""
        return self._changes_at + len(self._changes)

    def changed_since(self, position: int) -> list[int] | None:
        """The items of the `catalog` messages applied since ``position`` (repeats kept), or
        None when the log no longer reaches back that far: read everything again."""
        if position < self._changes_at:
            return None
        return self._changes[position - self._changes_at :]

    def set_stock(self, item_id: str, available: int) -> StockChange | None:
        """Apply a `stock` message; None when the item is unknown."""
        idx = self.index.get(item_id)
        if idx is None:
            return None
        before = int(self.available[idx])
        self.available[idx] = available
        went_out = before > 0 and available <= 0
        came_back = before <= 0 and available > 0
        if went_out or came_back:
            self.version += 1
            self._relist(self.feature_ids[idx].tolist())
        return StockChange(idx, went_out, came_back)

    def record_interaction(self, indexes: list[int], weight: float) -> None:
        """Popularity as observed by this worker (its partitions' users), used for cold start."""
        if indexes:
            popularity = self.popularity
            for i in indexes:  # in order, duplicates included, as ``np.add.at`` adds (see
                popularity[i] += weight  # ``Trending.observe``: a scalar add is ~10x cheaper)
            self._tops.grew(indexes)
            if weight < 0:  # a merge follows growing scores only
                self._relist(self.feature_ids[indexes].ravel().tolist())

    def _relist(self, fids: Iterable[int]) -> None:
        """The overall popular list and those of ``fids`` are rebuilt at their next read: who
        may be in them, or an item's place, changed in a way merging cannot follow (it left
        or joined them, or its popularity fell). The lists of other features do not hold the
        item, so they stay as they are. (A new epoch for every such change, as before, made
        every list rebuild at its next read: on 50,000 products in 20 categories, a
        ranking's read of 12 lists after one catalog edit took 1,152 µs instead of 16.)"""
        self._popular.invalidate((0,))
        self._by_feature.invalidate({f for f in fids if f != PAD})

    def restore_popularity(self, indexes: np.ndarray, values: np.ndarray) -> None:
        """Popularity from a snapshot (``stream.domain.learned_snapshot``): set, not added;
        every popular list is rebuilt at its next read."""
        self.popularity[indexes] = values
        self._epoch += 1

    # -- reads ---------------------------------------------------------------------------------
    def eligible(self, indexes: np.ndarray) -> np.ndarray:
        """Mask of items that may be shown at all: in stock and not deleted."""
        return (self.available[indexes] > 0) & ~self.deleted[indexes]

    def is_eligible(self, idx: int) -> bool:
        """``eligible`` for one item, without building arrays (the stock check asks per
        held item)."""
        return bool(self.available[idx] > 0) and not bool(self.deleted[idx])

    def members_of(self, fid: int) -> np.ndarray:
        """The items carrying feature ``fid``, in the order they got it."""
        members = self.items_by_feature.get(fid, {})
        return np.fromiter(members, dtype=np.int64, count=len(members))

    def features_of(self, idx: int) -> list[str]:
        """The item's feature names. Read for every event applied to a profile: the row goes
        through ``tolist`` first, since iterating a numpy row yields a numpy scalar per entry
        (2.8 against 0.8 µs a call for a five-feature item)."""
        names = self.vocab_names
        return [names[f] for f in self.feature_ids[idx].tolist() if f != PAD]

    def _all_items(self, _: int) -> np.ndarray:
        """Every item: the overall popular list's members (for a rebuild)."""
        return np.arange(len(self.ids), dtype=np.int64)

    def _top_arrays(self) -> Arrays:
        """What the popular lists read (fetched per read: ``_grow`` replaces the arrays)."""
        return self.popularity, self.tiebreak, self.available, self.deleted, self.feature_ids

    def popular(self, k: int) -> np.ndarray:
        """Most popular eligible items: exact at every read, kept up to date incrementally
        (``top_lists.PopularTops``); ranked by popularity, ties by a per-item constant."""
        return self._popular.read(_OVERALL, k, self._epoch, self._top_arrays(), self._all_items)

    def top_for_feature(self, fid: int, k: int) -> np.ndarray:
        """Most popular eligible items carrying feature ``fid`` (exact, like ``popular``)."""
        return self.tops_for_features(np.full(1, fid, dtype=np.int64), k)

    def tops_for_features(self, fids: np.ndarray, k: int) -> np.ndarray:
        """``top_for_feature(fid, k)`` of each of ``fids``, one after the other, in one call
        (what a ranking reads for its liked features)."""
        names = np.ascontiguousarray(fids, dtype=np.int64)
        return self._by_feature.read(names, k, self._epoch, self._top_arrays(), self.members_of)
