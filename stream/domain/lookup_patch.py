"""A lookup update computed beside the lookup in use, then written into it: no copy.

Why: a worker computes catalog updates in a thread while ranking reads the rows in use
(``stream.adapters.live_lookup``). It used to update a full copy of the lookup and swap it in:
~110 MB and ~25 ms at 68k items, ~0.5 s at 273k, ~1.6 GB at a million, twice the lookup in
memory for as long as the update ran, for every batch of catalog messages.

A ``StagedLookup`` shares the lookup's buffers. Its update writes in place only what ranking
does not read (embeddings, target flags, list labels, and new items' slots beyond the rows in
use), and journals every write of rows. It reads its own journaled rows where an update reads
rows back (``_holding``, ``_held``, ``_kth``): a release that cut rows short, then the merge
reading their K-th; an upsert's new targets, then a removal releasing the rows they entered.
``install`` then writes the journal into the lookup on the event loop, at once: a reader never
sees a row half written, and the loop pays for the rows the update changed, not the lookup.

``stage`` returns None where the update needs a copy: hub-aware rows (an upsert moves every
target's r and may rescore every row) and new items beyond the buffers' spare capacity (a
growth copies them anyway). ``SPARE`` is what such a copy reserves, so the next batches of new
items fit. A stage whose journal grows past ``COPY_SHARE`` of the lookup's bytes (the journal
saved little any more) or past ``JOURNAL_MAX`` (writing it would stall the loop) turns into a
copy on the way (``_detach``), swapped in whole.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from stream.domain.lookup import ROLES, QueryTargetLookup
from stream.domain.lookup_buffers import Row, resized

#: room for new items a copy reserves beyond what it needs: a share of the lookup, at least
#: one full batch of catalog messages (``pfeed_runtime.APPLY_BATCH``)
SPARE = 0.125
SPARE_MIN = 1024
#: a stage whose journal passes this share of the lookup's bytes turns into a copy
COPY_SHARE = 0.125
#: or this many bytes, whatever the lookup's size: the loop writes a journal at ~1.2–1.7 GB/s
#: (12 MB took 7–10 ms at 273k items), so at most ~20–25 ms of its time
JOURNAL_MAX = 32 * 2**20


class StagedLookup(QueryTargetLookup):
    """``base``'s rows as an update sees them: the base's, then its own writes (``journal``,
    read back entry by entry in the order they were written: the last write of a row wins)."""

    base: QueryTargetLookup
    journal: list[tuple[str, np.ndarray, Row]]
    _sorted: list[tuple[np.ndarray, np.ndarray]]  # per entry: its rows sorted, and their order
    journal_bytes: int
    limit: int  # journal bytes past which it turns into a copy (``COPY_SHARE``, ``JOURNAL_MAX``)
    detached: bool  # it did: its own buffers, no journal
    touched: dict[str, np.ndarray]  # per role, the rows it wrote (``summary``)
    added: dict[str, int]  # the new items' positions (the first map of its ``index``)

    def _write(self, role: str, block: np.ndarray, row: Row) -> None:
        self.touched[role][block] = True
        if self.detached:
            super()._write(role, block, row)
            return
        # in the buffers' types, so what it reads back is what the base would have stored
        buffers = (self.rows[role], self.sims[role], self.strengths[role], self.lengths[role])
        shaped = Row(*(np.asarray(p, dtype=b.dtype) for p, b in zip(row, buffers, strict=True)))
        block = np.array(block, dtype=np.int64)
        order = np.argsort(block, kind="stable")
        self.journal.append((role, block, shaped))
        self._sorted.append((block[order], order))
        self.journal_bytes += block.nbytes + sum(part.nbytes for part in shaped)
        if self.journal_bytes > self.limit:
            self._detach()

    def _detach(self) -> None:
        """Turn into a copy: the buffers copied (with what the update wrote in place), the
        journal written into them. An update that rewrites most rows (a release cutting a
        changed item out of every row that held it) would otherwise hold a journal as large
        as the lookup, and writing it would stall the loop (every row of 136k items: ~25 ms)."""
        n = len(self.ids)
        self._buffers = {
            name: resized(name, buf, self._capacity, n) for name, buf in self._buffers.items()
        }
        self._bind(n)
        for role, block, row in self.journal:
            super()._write(role, block, row)
        self.journal, self._sorted, self.detached = [], [], True  # (its bytes: what it held)

    def _entries(self, role: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, Row]]:
        """``role``'s writes in order: rows, rows sorted, their order, what was written."""
        return [
            (block, *self._sorted[n], row)
            for n, (r, block, row) in enumerate(self.journal)
            if r == role
        ]

    def _holding(self, role: str, pos: np.ndarray) -> np.ndarray:
        held = super()._holding(role, pos)
        entries = self._entries(role)
        if not entries:
            return held
        holds = np.zeros(len(self.ids), dtype=bool)
        holds[held] = True
        for block, _, _, row in entries:
            holds[block] = np.isin(row.targets, pos).any(axis=1)
        return np.flatnonzero(holds)

    def _held(self, role: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        targets, sims = super()._held(role, rows)
        for _, ordered, order, row in self._entries(role):
            at, hit = _found(ordered, rows)
            if hit.any():
                src = order[at[hit]]
                targets[hit], sims[hit] = row.targets[src], row.sims[src]
        return targets, sims

    def _kth(self, role: str, rows: np.ndarray | None = None) -> np.ndarray:
        kth = super()._kth(role, rows)
        entries = self._entries(role)
        if not entries:
            return kth
        kth = kth.copy()  # (the base's: a view of its buffer when ``rows`` is None)
        for block, ordered, order, row in entries:
            if rows is None:
                kth[block] = row.sims[:, -1]
            else:
                at, hit = _found(ordered, rows)
                kth[hit] = row.sims[order[at[hit]], -1]
        return kth


def _found(ordered: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``rows`` is in the sorted ``ordered``, and whether it is there."""
    if not ordered.size:
        return np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=bool)
    at = np.minimum(np.searchsorted(ordered, rows), ordered.size - 1)
    return at, ordered[at] == rows


def stage(base: QueryTargetLookup, new: int) -> StagedLookup | None:
    """An update of ``base`` that will take ``new`` items, computed without copying it; None
    where it needs a copy (see the module's docstring)."""
    if base.hub_k > 0 or len(base) + new > base._capacity:
        return None
    out = StagedLookup.__new__(StagedLookup)
    out.__dict__.update(base.__dict__)
    out.base, out.journal, out._sorted, out.journal_bytes = base, [], [], 0
    out.limit, out.detached = int(min(COPY_SHARE * lookup_bytes(base), JOURNAL_MAX)), False
    out.touched = {role: np.zeros(base._capacity, dtype=bool) for role in ROLES}
    # its own names (their new entries go to the first map) and groupings; the same buffers
    out.ids, out.added = list(base.ids), {}
    out.index = collections.ChainMap(out.added, base.index)  # type: ignore[assignment]
    out.centroids, out._buffers = dict(base.centroids), dict(base._buffers)
    out._bind(len(base))
    return out


def capacity_for(base: QueryTargetLookup, new: int) -> int:
    """What a copy that takes ``new`` items reserves (``SPARE``)."""
    need = len(base) + new
    return need + max(SPARE_MIN, int(need * SPARE))


def install(staged: StagedLookup) -> QueryTargetLookup:
    """Write ``staged``'s update into its base (on the event loop: no reader sees it half
    done) and return the base."""
    if staged.detached:
        raise ValueError("a stage that turned into a copy is swapped in (``settled``)")
    base = staged.base
    first = len(base)
    base.ids.extend(staged.ids[first:])
    base.index.update(staged.added)
    base._bind(len(base))
    for role, block, row in staged.journal:
        base._write(role, block, row)
    base.centroids, base.version = staged.centroids, staged.version
    base.exact_updates = staged.exact_updates
    return base


def settled(staged: StagedLookup) -> QueryTargetLookup:
    """What the thread hands to ``install``: the staged update, or the copy it turned into
    (``_detach``) as a plain lookup, to swap in whole."""
    if not staged.detached:
        return staged
    out = QueryTargetLookup.__new__(QueryTargetLookup)
    kept = set(vars(staged.base))  # (a lookup's attributes, not a stage's)
    out.__dict__.update({k: v for k, v in vars(staged).items() if k in kept})
    out.index = {**staged.base.index, **staged.added}  # (at C speed, unlike the ChainMap)
    return out


def lookup_bytes(lookup: QueryTargetLookup) -> int:
    """What a copy of ``lookup`` allocates for its items (not its spare capacity)."""
    size = sum(buffer.nbytes for buffer in lookup._buffers.values())
    return size * len(lookup) // max(1, lookup._capacity)


def summary(staged: StagedLookup) -> dict[str, Any]:
    """What an update wrote, for logs and the bench: rows per role, journal bytes, whether
    it turned into a copy."""
    rows = {role: int(staged.touched[role].sum()) for role in ROLES}
    return {"rows": rows, "journal_bytes": staged.journal_bytes, "copied": staged.detached}
