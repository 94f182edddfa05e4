"""What a shop's customers repeat, learned online from the events themselves.

Two propensities, each a rate with hierarchical shrinkage (item → leaf category → shop):

* **re-buy**: of the purchases of an item, the share made by a customer who had bought it
  before. Staples score high (milk is bought again and again), a film or an appliance scores ~0.
* **view-return**: of the items customers viewed (clicked, dwelled on, carted), the share the
  same customer later bought. Low when a look is a verdict (a film rated 3 is never rated 4
  later), higher when customers come back to what they browsed.

Rates are Beta-smoothed: ``(successes + m · parent) / (trials + m)``, so an item seen twice
says little and falls back to its category, and a category (or an item without attributes) to
the shop-wide rate. The state is a handful of additive counters, so it serialises to a dict,
merges across workers by addition and survives restarts; ``observe_flags`` is the only writer
and reads what each event changes from its flags (``stream.domain.first_seen``: decided by event
time, so the counts do not depend on how a user's topics interleave).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from stream.domain.rate_arrays import RateArrays, rates_for

if TYPE_CHECKING:
    from stream.domain.catalog import Catalog

#: Pseudo-observations an item (or category) needs before its own rate outweighs its parent's.
PRIOR_STRENGTH = 5.0
#: The shop-wide rate before any event: one success in ten trials, a weak "maybe".
GLOBAL_PRIOR = (1.0, 10.0)
VIEW_TOPICS = ("clicks", "dwell", "carts")

CategoryOf = Callable[[str], str | None]


@dataclass
class Rate:
    """Trials and successes for one key; additive, so worker states merge by addition."""

    successes: float = 0.0
    trials: float = 0.0

    def shrunk(self, parent: float, strength: float = PRIOR_STRENGTH) -> float:
        # capped: a success whose trial predates this state (restart, bounded query set)
        # must not push a rate past 1
        return min(1.0, (self.successes + strength * parent) / (self.trials + strength))


@dataclass
class RateTable:
    """A rate per item, per leaf category and shop-wide."""

    items: dict[str, Rate] = field(default_factory=dict)
    categories: dict[str, Rate] = field(default_factory=dict)
    shop: Rate = field(default_factory=Rate)
    #: the read side (``stream.domain.rate_arrays``) and the keys written since its last read;
    #: not part of the counts (equality, ``to_dict``)
    reader: RateArrays | None = field(default=None, compare=False, repr=False)
    _dirty_items: set[str] = field(default_factory=set, init=False, compare=False, repr=False)
    _dirty_categories: set[str] = field(default_factory=set, init=False, compare=False, repr=False)

    def add(self, item_id: str, category: str | None, success: bool, trial: bool = True) -> None:
        """Count a success and/or a trial on the item, its category and the shop."""
        self.adjust(item_id, category, 1.0 if success else 0.0, 1.0 if trial else 0.0)

    def adjust(self, item_id: str, category: str | None, successes: float, trials: float) -> None:
        """Add (or, for a correction, take back) counts on the item, its category and the shop;
        a key whose counts a correction brought back to zero is dropped, so the state after any
        arrival order is the same, key for key."""
        if self.reader is not None:
            self._dirty_items.add(item_id)
            if category:
                self._dirty_categories.add(category)
        for table, key in ((self.items, item_id), (self.categories, category)):
            if key:
                rate = table.setdefault(key, Rate())
                rate.successes += successes
                rate.trials += trials
                if rate.successes == 0 and rate.trials == 0:
                    del table[key]
        self.shop.successes += successes
        self.shop.trials += trials

    def shop_rate(self) -> float:
        a, n = GLOBAL_PRIOR
        return min(1.0, (self.shop.successes + a) / (self.shop.trials + n))

    def rate(self, item_id: str, category: str | None) -> float:
        """Item rate shrunk to its category's, itself shrunk to the shop's."""
        parent = self.shop_rate()
        cat = self.categories.get(category) if category else None
        if cat is not None:
            parent = cat.shrunk(parent)
        item = self.items.get(item_id)
        return parent if item is None else item.shrunk(parent)

    def rates(self, item_ids: Iterable[str], category_of: CategoryOf) -> dict[str, float]:
        """``rate`` for many items at once (shop and category rates computed once each).
        Never memoised across calls: a memo refreshed as the counts grew made a ranking depend
        on when the rates were last read, so two workers with the same counts could differ."""
        return self._rates(item_ids, category_of)

    def rates_for(self, item_ids: Sequence[str], catalog: Catalog) -> dict[str, float]:
        """``rates`` with the catalog's leaf categories (``signals.category_of``), read from
        arrays by catalog index (``stream.domain.rate_arrays``): equal to the last bit, and
        a few numpy operations for a grocery household's ~300 purchases."""
        return rates_for(self, item_ids, catalog, PRIOR_STRENGTH)

    def take_dirty(self) -> tuple[set[str], set[str]]:
        """The item and category keys written since the last call (the reader's sync)."""
        items, categories = self._dirty_items, self._dirty_categories
        self._dirty_items, self._dirty_categories = set(), set()
        return items, categories

    def mark_all_dirty(self) -> None:
        """Every key is to be read again (a new reader)."""
        self._dirty_items.update(self.items)
        self._dirty_categories.update(self.categories)

    def _rates(self, item_ids: Iterable[str], category_of: CategoryOf) -> dict[str, float]:
        shop = self.shop_rate()
        parents: dict[str | None, float] = {None: shop}
        out: dict[str, float] = {}
        items, m = self.items, PRIOR_STRENGTH
        for item_id in item_ids:
            category = category_of(item_id)
            parent = parents.get(category)
            if parent is None:
                cat = self.categories.get(category) if category else None
                parent = parents[category] = shop if cat is None else cat.shrunk(shop)
            item = items.get(item_id)
            # ``Rate.shrunk`` inlined (the same operations): ~100 items a burst for a user
            # with a long history, where the call was a third of this loop
            out[item_id] = (
                parent
                if item is None
                else min(1.0, (item.successes + m * parent) / (item.trials + m))
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": {k: [r.successes, r.trials] for k, r in self.items.items()},
            "categories": {k: [r.successes, r.trials] for k, r in self.categories.items()},
            "shop": [self.shop.successes, self.shop.trials],
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> RateTable:
        return cls(
            items={k: Rate(*v) for k, v in body.get("items", {}).items()},
            categories={k: Rate(*v) for k, v in body.get("categories", {}).items()},
            shop=Rate(*body.get("shop", (0.0, 0.0))),
        )

    def merge(self, other: RateTable) -> None:
        if self.reader is not None:
            self._dirty_items.update(other.items)
            self._dirty_categories.update(other.categories)
        for mine, theirs in (
            (self.items, other.items),
            (self.categories, other.categories),
        ):
            for key, rate in theirs.items():
                slot = mine.setdefault(key, Rate())
                slot.successes += rate.successes
                slot.trials += rate.trials
        self.shop.successes += other.shop.successes
        self.shop.trials += other.shop.trials


@dataclass
class RepeatModel:
    """Learned re-buy and view-return propensities (see the module docstring)."""

    rebuy: RateTable = field(default_factory=RateTable)
    view_return: RateTable = field(default_factory=RateTable)

    def observe_flags(
        self, topic: str, item_ids: Sequence[str], flags: str, category_of: CategoryOf
    ) -> None:
        """Count one event from what it changes for each item (``flags``, see
        ``stream.domain.first_seen``: decided by event time, so late events correct earlier
        counts) — the form in which observations travel between workers on `learned`.

        An order line is a re-buy trial (success: the user bought the item in another order)
        and, when the user's first look at it preceded their first purchase, a view-return
        success. A first look at an item not bought before is a view-return trial.
        """
        first = dict(zip(reversed(item_ids), reversed(flags), strict=True))  # first wins
        lines = [(i, first[i]) for i in dict.fromkeys(item_ids)]
        if topic == "orders":
            for item_id, flag in lines:
                category = category_of(item_id)
                self.rebuy.add(item_id, category, flag in "by")
                if flag in "vxy":
                    success = {"v": 1.0, "x": 0.0, "y": -1.0}[flag]
                    self.view_return.adjust(
                        item_id, category, success, 0.0 if flag == "v" else -1.0
                    )
        elif topic in VIEW_TOPICS:
            for item_id, flag in lines:
                if flag in "nr":
                    success = 1.0 if flag == "r" else 0.0
                    self.view_return.adjust(item_id, category_of(item_id), success, 1.0)

    def rebuy_rate(self, item_id: str, category: str | None) -> float:
        return self.rebuy.rate(item_id, category)

    def view_return_rate(self, item_id: str, category: str | None) -> float:
        return self.view_return.rate(item_id, category)

    def summary(self) -> dict[str, float]:
        """Shop-wide learned rates and evidence, for reports."""
        return {
            "rebuy_rate": round(self.rebuy.shop_rate(), 4),
            "rebuy_trials": self.rebuy.shop.trials,
            "view_return_rate": round(self.view_return.shop_rate(), 4),
            "view_return_trials": self.view_return.shop.trials,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"rebuy": self.rebuy.to_dict(), "view_return": self.view_return.to_dict()}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> RepeatModel:
        return cls(
            rebuy=RateTable.from_dict(body.get("rebuy", {})),
            view_return=RateTable.from_dict(body.get("view_return", {})),
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> RepeatModel:
        return cls.from_dict(orjson.loads(raw))

    def merge(self, other: RepeatModel) -> None:
        """Add another worker's counts (states are sums of per-event counts)."""
        self.rebuy.merge(other.rebuy)
        self.view_return.merge(other.view_return)
