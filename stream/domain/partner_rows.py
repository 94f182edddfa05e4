"""Co-occurrence rows kept as numpy arrays: per item, its partners and pair counts in
insertion order, plus each partner's position in a small dict.

Why not a dict per row (as before): ranking reads every row of a user's query set on every
burst, up to ``long_query_items`` (50) rows of up to 256 partners each, and a dict had to be
walked entry by entry into numpy (``np.fromiter`` over its keys and values): on a heavy user
(50 known queries) ~1.2 ms of a ~2.9 ms click, 40 % of it. Here a read is a view per row and
one concatenation per column (50 rows of 256: ~30 µs against ~430 µs from dicts); a write
finds the partner in the position dict and updates the count in place.

Why parallel dicts of arrays and not an object per row: the garbage collector walks every
tracked object at each full collection (~0.5 µs an object here), and the rows learned after a
worker's start-up freeze are walked again and again. A dict holding only ints and a numpy
array are never tracked, a tuple of two arrays no more after the collector's first look; an
object per row holding two ``array.array`` (this module's first version) added three a row.

The order of a row is the order a dict kept (new partners appended, a deleted one removed,
a prune keeps the strongest in their rank order), so everything downstream that breaks ties
by position sees what it saw with the dict (``tests/unit/test_partner_rows.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

#: first capacity of a row's arrays; doubled when full
_FIRST = 8
_NO_KEYS = np.zeros(0, dtype=np.int64)
_NO_VALS = np.zeros(0, dtype=np.float64)


class PartnerRows:
    """item → (partner → count, in insertion order), readable as arrays without a Python loop."""

    def __init__(self) -> None:
        #: per item: partner -> position in its arrays (its size is the row's size)
        self._slot: dict[int, dict[int, int]] = {}
        #: per item: (int64 partners, float64 counts), of a capacity >= the row's size; a
        #: tuple of untracked arrays is itself untracked after the collector's first look
        self._arr: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def size(self, item: int) -> int:
        slot = self._slot.get(item)
        return 0 if slot is None else len(slot)

    def touch(self, item: int) -> None:
        """Make ``item``'s row exist, empty if new (a dict row was made on any write)."""
        if item not in self._slot:
            self._set_row(item, [])

    def get(self, item: int, partner: int) -> float | None:
        slot = self._slot.get(item)
        pos = None if slot is None else slot.get(partner)
        return None if pos is None else float(self._arr[item][1][pos])

    def add(self, item: int, partner: int, weight: float) -> int:
        """Count ``weight`` more for the pair (the partner appended when new); returns the
        row's size."""
        slot = self._slot.get(item)
        if slot is None:
            self._set_row(item, [])
            slot = self._slot[item]
        pos = slot.get(partner)
        if pos is not None:
            self._arr[item][1][pos] += weight
            return len(slot)
        keys, vals = self._arr[item]
        n = len(slot)
        if n == keys.size:
            grow = max(n, _FIRST)
            keys = np.concatenate([keys, np.empty(grow, dtype=np.int64)])
            vals = np.concatenate([vals, np.empty(grow, dtype=np.float64)])
            self._arr[item] = (keys, vals)
        keys[n] = partner
        vals[n] = weight
        slot[partner] = n
        return n + 1

    def set(self, item: int, partner: int, value: float) -> None:
        """Overwrite the count of a pair the row holds."""
        self._arr[item][1][self._slot[item][partner]] = value

    def remove(self, item: int, partner: int) -> None:
        """Drop a partner; the others keep their order (rare: a correction that empties it)."""
        slot, (keys, vals) = self._slot[item], self._arr[item]
        n = len(slot)
        pos = slot.pop(partner)
        keys[pos : n - 1] = keys[pos + 1 : n].copy()
        vals[pos : n - 1] = vals[pos + 1 : n].copy()
        for p, k in enumerate(keys[pos : n - 1].tolist(), start=pos):
            slot[k] = p

    def replace(self, item: int, entries: Iterable[tuple[int, float]]) -> None:
        """Set ``item``'s row to ``entries`` (partner, count) in their order (partners unique)."""
        self._set_row(item, list(entries))

    def _set_row(self, item: int, pairs: list[tuple[int, float]]) -> None:
        n = len(pairs)
        keys = np.empty(max(n, _FIRST), dtype=np.int64)
        vals = np.empty(max(n, _FIRST), dtype=np.float64)
        if n:
            keys[:n] = [k for k, _ in pairs]
            vals[:n] = [v for _, v in pairs]
        self._arr[item] = (keys, vals)
        self._slot[item] = {k: p for p, (k, _) in enumerate(pairs)}

    def arrays(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """(partners, counts) of one row as views, in the row's order (valid until a write)."""
        n = self.size(item)
        if not n:
            return _NO_KEYS, _NO_VALS
        keys, vals = self._arr[item]
        return keys[:n], vals[:n]

    def read(self, items: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Every row of ``items`` concatenated in their order: (partners, counts, row sizes);
        writable copies."""
        slots, arr = self._slot, self._arr
        lens = [len(slots.get(i) or ()) for i in items]
        held = [(arr[i], n) for i, n in zip(items, lens, strict=True) if n]
        if not held:
            return _NO_KEYS.copy(), _NO_VALS.copy(), lens
        k = np.concatenate([a[0][:n] for a, n in held])
        v = np.concatenate([a[1][:n] for a, n in held])
        return k, v, lens

    def items(self) -> Iterator[int]:
        """Every item with a row (also the empty ones), in creation order."""
        return iter(self._slot)

    def as_dict(self, item: int) -> dict[int, float]:
        keys, vals = self.arrays(item)
        return dict(zip(keys.tolist(), vals.tolist(), strict=True))
