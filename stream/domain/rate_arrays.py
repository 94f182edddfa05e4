"""The read side of a learned ``RateTable``: its counts as arrays by catalog index.

Why: ranking asks for the re-buy rate of everything a user bought, on every burst. A grocery
household has ~300 purchases, and one dict lookup and one ``Rate`` object an item (scattered
in memory, cold after the other users' bursts) made ``returns_of`` ~30 % of a Complete
Journey order's candidate step (py-spy, ``python -m stream.bench.grocery``). Here the
counts sit in arrays by catalog index (items) and vocabulary id (leaf categories), and the
rates of all of a user's items are a few numpy operations over their indexes. The arrays cost
17 bytes a catalog item a table (34 for re-buy and view-return), ~8 % on top of the catalog
replica's ~435 B an item (README "Capacity").

Exact, not a memo: every read first copies the counts written since the last read (the keys
``RateTable.adjust`` and ``merge`` mark), and the counts of items and categories the catalog
got to know since (a table can hold counts for an item its catalog reads later: restored
from a snapshot, or bought before its catalog message). So a read depends on the counts only,
never on when the last read was (``RateTable.rates``' docstring says why that matters). The
arithmetic is ``RateTable.rate``'s, operation for operation, so the rates are equal to the
last bit (``tests/unit/test_rate_arrays.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from stream.domain.catalog import PAD, Catalog

if TYPE_CHECKING:
    from stream.domain.learned import RateTable


class _Counts:
    """Successes and trials by a dense key (an index), and which keys have any."""

    def __init__(self) -> None:
        self.successes = np.zeros(0, dtype=np.float64)
        self.trials = np.zeros(0, dtype=np.float64)
        self.held = np.zeros(0, dtype=bool)

    def fit(self, n: int) -> None:
        """Make room for keys below ``n`` (doubling, so growth stays amortised)."""
        if n <= self.held.size:
            return
        size = max(n, 2 * self.held.size, 64)
        for name in ("successes", "trials", "held"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: old.size] = old
            setattr(self, name, new)

    def put(self, key: int, counts: tuple[float, float] | None) -> None:
        self.fit(key + 1)
        if counts is None:
            self.successes[key] = self.trials[key] = 0.0
            self.held[key] = False
        else:
            self.successes[key], self.trials[key] = counts
            self.held[key] = True


class RateArrays:
    """One table's counts by one catalog's item indexes and vocabulary ids."""

    def __init__(self, table: RateTable, catalog: Catalog) -> None:
        self.table = table
        self.catalog = catalog
        self.items = _Counts()
        self.categories = _Counts()
        self._items_known = 0  # catalog items read so far (``Catalog.ids`` only grows)
        self._vocab_known = 0  # vocabulary names read so far (``vocab_names`` only grows)

    def sync(self) -> None:
        """Copy what changed since the last read: written keys, and keys the catalog learned."""
        table, catalog = self.table, self.catalog
        index, vocab = catalog.index, catalog.vocab
        dirty_items, dirty_categories = table.take_dirty()
        new_ids = catalog.ids[self._items_known :]
        self._items_known += len(new_ids)
        for item_id in (*dirty_items, *(i for i in new_ids if i in table.items)):
            idx = index.get(item_id)
            if idx is not None:
                rate = table.items.get(item_id)
                self.items.put(idx, None if rate is None else (rate.successes, rate.trials))
        new_names = catalog.vocab_names[self._vocab_known :]
        self._vocab_known += len(new_names)
        for name in (*dirty_categories, *(n for n in new_names if n in table.categories)):
            fid = vocab.get(name)
            if fid is not None and fid != PAD:
                rate = table.categories.get(name)
                self.categories.put(fid, None if rate is None else (rate.successes, rate.trials))

    def rates(self, idx: np.ndarray, strength: float) -> np.ndarray:
        """``RateTable.rate`` of the items at catalog indexes ``idx`` (all known, >= 0)."""
        self.sync()
        shop = self.table.shop_rate()
        self.items.fit(self.catalog.available.shape[0])
        self.categories.fit(len(self.catalog.vocab_names))
        cats = self.categories
        fid = self.catalog.category[idx]
        parent = np.where(
            cats.held[fid],
            np.minimum(
                1.0, (cats.successes[fid] + strength * shop) / (cats.trials[fid] + strength)
            ),
            shop,
        )
        items = self.items
        return np.where(
            items.held[idx],
            np.minimum(
                1.0, (items.successes[idx] + strength * parent) / (items.trials[idx] + strength)
            ),
            parent,
        )


#: below this many items the rates are read one by one (``RateTable.rates``): a read through
#: the arrays has a fixed cost of ~23 µs (the sync and a dozen numpy calls), which one by one
#: ~0.4 µs an item only reaches at ~40 items (a synthetic user has a handful, a grocery
#: household ~300: 64 µs against 115)
ARRAYS_FROM = 48


def rates_for(
    table: RateTable,
    item_ids: Sequence[str],
    catalog: Catalog,
    strength: float,
    arrays_from: int = ARRAYS_FROM,
) -> dict[str, float]:
    """``table.rates(item_ids, catalog.category_name)``: one by one for fewer than
    ``arrays_from`` items, else through the table's arrays for ``catalog`` (made at their
    first read, or again for another catalog). Both give the same floats."""
    if len(item_ids) < arrays_from:
        return table.rates(item_ids, catalog.category_name)
    reader = table.reader
    if reader is None or reader.catalog is not catalog:
        reader = table.reader = RateArrays(table, catalog)
        table.mark_all_dirty()
    idx = np.fromiter(
        map(catalog.index.get, item_ids, repeat(-1)), dtype=np.int64, count=len(item_ids)
    )  # (``map``: 15 µs for 185 ids, 23 with a generator)
    known = idx >= 0
    values = reader.rates(idx[known], strength).tolist()
    if known.all():
        return dict(zip(item_ids, values, strict=True))
    # items the catalog does not know (yet): no category, their own counts or the shop's rate
    out: dict[str, float] = {}
    it = iter(values)
    for item_id, is_known in zip(item_ids, known.tolist(), strict=True):
        out[item_id] = next(it) if is_known else table.rate(item_id, None)
    return out
