"""Co-occurrence rows kept as numpy arrays: per item, its partners and pair counts in
insertion order, plus each partner's position in a small dict.

Why not a dict per row (as before): ranking reads every row of a user's query set on every
burst, up to ``long_query_items`` (50) rows of up to 256 partners each, and a dict had to be
walked entry by entry into numpy (``np.fromiter`` over its keys and values): on a heavy user
(50 known queries) ~1.2 ms of a ~2.9 ms click, 40 % of it. A write finds the partner in the
position dict and updates the count in place.

Why one arena and not two arrays per row (this module's second version): a read of a query
set was a view per row and one ``np.concatenate`` per column, ~0.9 µs of Python and numpy
per row (17 µs a burst on the full bench, ~19 rows). Here every row is a region of two shared
arrays (``_keys``, ``_vals``), so a read is two short lists (where each row starts, its size)
and one compiled gather (``relation_kernels.gather_rows``): ~4 µs. A row that outgrows its
region moves to one twice as large and leaves the old one to the next row of that capacity
(capacities are powers of two, as the per-row arrays doubled), so the arena never needs a
compaction, which would stall a worker over every row.

Why parallel dicts and arrays and not an object per row: the garbage collector walks every
tracked object at each full collection (~0.5 µs an object here), and the rows learned after a
worker's start-up freeze are walked again and again. A dict holding only ints and a numpy
array are never tracked; an object per row holding two ``array.array`` (this module's first
version) added three a row.

The order of a row is the order a dict kept (new partners appended, a deleted one removed,
a prune keeps the strongest in their rank order), so everything downstream that breaks ties
by position sees what it saw with the dict (``tests/unit/test_partner_rows.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from stream.domain.relation_kernels import gather_rows

#: first capacity of a row's region; doubled when full
_FIRST = 8
_NO_KEYS = np.zeros(0, dtype=np.int64)
_NO_VALS = np.zeros(0, dtype=np.float64)


def _room_for(n: int) -> int:
    """The region capacity a row of ``n`` entries gets: a power of two, at least ``_FIRST``."""
    return max(_FIRST, 1 << (n - 1).bit_length())


class PartnerRows:
    """item → (partner → count, in insertion order), readable as arrays without a Python loop."""

    def __init__(self) -> None:
        #: per item: partner -> position in its region (its size is the row's size)
        self._slot: dict[int, dict[int, int]] = {}
        #: per item: where its region starts in the arena, and the region's capacity
        self._at: dict[int, int] = {}
        self._room: dict[int, int] = {}
        #: every row's partners and counts, a region per row; ``_end`` is the used length
        self._keys = np.empty(1024, dtype=np.int64)
        self._vals = np.empty(1024, dtype=np.float64)
        self._end = 0
        #: per capacity, the starts of regions a row left when it moved to a larger one
        self._free: dict[int, list[int]] = {}

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
        return None if pos is None else float(self._vals[self._at[item] + pos])

    def add(self, item: int, partner: int, weight: float) -> int:
        """Count ``weight`` more for the pair (the partner appended when new); returns the
        row's size."""
        slot = self._slot.get(item)
        if slot is None:
            self._set_row(item, [])
            slot = self._slot[item]
        pos = slot.get(partner)
        if pos is not None:
            self._vals[self._at[item] + pos] += weight
            return len(slot)
        n = len(slot)
        if n == self._room[item]:
            self._move(item, n, 2 * n)
        at = self._at[item] + n
        self._keys[at] = partner
        self._vals[at] = weight
        slot[partner] = n
        return n + 1

    def set(self, item: int, partner: int, value: float) -> None:
        """Overwrite the count of a pair the row holds."""
        self._vals[self._at[item] + self._slot[item][partner]] = value

    def remove(self, item: int, partner: int) -> None:
        """Drop a partner; the others keep their order (rare: a correction that empties it)."""
        slot, at, keys, vals = self._slot[item], self._at[item], self._keys, self._vals
        end = at + len(slot)
        pos = slot.pop(partner)
        keys[at + pos : end - 1] = keys[at + pos + 1 : end].copy()
        vals[at + pos : end - 1] = vals[at + pos + 1 : end].copy()
        for p, k in enumerate(keys[at + pos : end - 1].tolist(), start=pos):
            slot[k] = p

    def replace(self, item: int, entries: Iterable[tuple[int, float]]) -> None:
        """Set ``item``'s row to ``entries`` (partner, count) in their order (partners unique)."""
        self._set_row(item, list(entries))

    def _set_row(self, item: int, pairs: list[tuple[int, float]]) -> None:
        n = len(pairs)
        room = _room_for(n)
        if self._room.get(item) != room:  # a new row, or one of another capacity
            self._move(item, 0, room)
        at = self._at[item]
        if n:
            self._keys[at : at + n] = [k for k, _ in pairs]
            self._vals[at : at + n] = [v for _, v in pairs]
        self._slot[item] = {k: p for p, (k, _) in enumerate(pairs)}

    def _move(self, item: int, keep: int, room: int) -> None:
        """Give ``item`` a region of ``room`` holding the first ``keep`` entries of its current
        one (the current one is left for the next row of its capacity)."""
        free = self._free.get(room)
        if free:
            at = free.pop()
        else:
            at = self._end
            if at + room > self._keys.size:
                self._grow(at + room)
            self._end = at + room
        old = self._at.get(item)
        if old is not None:
            self._keys[at : at + keep] = self._keys[old : old + keep]
            self._vals[at : at + keep] = self._vals[old : old + keep]
            self._free.setdefault(self._room[item], []).append(old)
        self._at[item] = at
        self._room[item] = room

    def _grow(self, need: int) -> None:
        """Make the arena hold at least ``need`` entries (doubling, so appends stay amortised)."""
        size = max(need, 2 * self._keys.size)
        keys = np.empty(size, dtype=np.int64)
        vals = np.empty(size, dtype=np.float64)
        keys[: self._end] = self._keys[: self._end]
        vals[: self._end] = self._vals[: self._end]
        self._keys, self._vals = keys, vals

    def arrays(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """(partners, counts) of one row as views, in the row's order (valid until a write)."""
        n = self.size(item)
        if not n:
            return _NO_KEYS, _NO_VALS
        at = self._at[item]
        return self._keys[at : at + n], self._vals[at : at + n]

    def gather(self, items: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Every row of ``items`` concatenated in their order: (partners, counts, row sizes,
        the largest partner or the smallest int64 when there is none); fresh arrays."""
        slots, at = self._slot, self._at
        sizes = np.array([len(slots.get(i) or ()) for i in items], dtype=np.int64)
        starts = np.array([at.get(i, 0) for i in items], dtype=np.int64)
        keys, vals, top = gather_rows(self._keys, self._vals, starts, sizes)
        return keys, vals, sizes, top

    def read(self, items: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """``gather`` with the row sizes as a list."""
        keys, vals, sizes, _ = self.gather(items)
        return keys, vals, sizes.tolist()

    def items(self) -> Iterator[int]:
        """Every item with a row (also the empty ones), in creation order."""
        return iter(self._slot)

    def as_dict(self, item: int) -> dict[int, float]:
        keys, vals = self.arrays(item)
        return dict(zip(keys.tolist(), vals.tolist(), strict=True))
