"""One read model of a kind per catalog, made at its first use and kept as long as the
catalog lives (a worker has one catalog; tests and tools make many, which must not share)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from stream.domain.catalog import Catalog

T = TypeVar("T")


class PerCatalog(Generic[T]):
    """``of(catalog)``: the catalog's model, made by ``make(catalog)`` the first time."""

    def __init__(self, make: Callable[[Catalog], T]) -> None:
        self._make = make
        self._kept: weakref.WeakKeyDictionary[Catalog, T] = weakref.WeakKeyDictionary()

    def of(self, catalog: Catalog) -> T:
        kept = self._kept.get(catalog)
        if kept is None:
            kept = self._kept[catalog] = self._make(catalog)
        return kept
