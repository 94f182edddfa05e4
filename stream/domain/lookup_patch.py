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
items fit.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from stream.domain.lookup import ROLES, QueryTargetLookup
from stream.domain.lookup_buffers import Row

#: room for new items a copy reserves beyond what it needs: a share of the lookup, at least
#: one full batch of catalog messages (``pfeed_runtime.APPLY_BATCH``)
SPARE = 0.125
SPARE_MIN = 1024


class StagedLookup(QueryTargetLookup):
    """``base``'s rows as an update sees them: the base's, then its own writes (``journal``)."""

    base: QueryTargetLookup
    journal: list[tuple[str, np.ndarray, Row]]
    _latest: dict[str, tuple[np.ndarray, Row]]  # per role: ``_written``, until the next write

    def _write(self, role: str, block: np.ndarray, row: Row) -> None:
        # in the buffers' types, so what it reads back is what the base would have stored
        buffers = (self.rows[role], self.sims[role], self.strengths[role], self.lengths[role])
        shaped = Row(*(np.asarray(p, dtype=b.dtype) for p, b in zip(row, buffers, strict=True)))
        self.journal.append((role, np.array(block, dtype=np.int64), shaped))
        self._latest.pop(role, None)

    def _holding(self, role: str, pos: np.ndarray) -> np.ndarray:
        held = super()._holding(role, pos)
        rows, latest = self._written(role)
        if not rows.size:
            return held
        holds = np.isin(latest.targets, pos).any(axis=1)
        return np.union1d(np.setdiff1d(held, rows), rows[holds])

    def _held(self, role: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        targets, sims = super()._held(role, rows)
        at, hit = self._found(role, rows)
        if hit.any():
            latest = self._written(role)[1]
            targets[hit], sims[hit] = latest.targets[at[hit]], latest.sims[at[hit]]
        return targets, sims

    def _kth(self, role: str, rows: np.ndarray | None = None) -> np.ndarray:
        kth = super()._kth(role, rows)
        written, latest = self._written(role)
        if not written.size:
            return kth
        kth = kth.copy()  # (the base's: a view of its buffer when ``rows`` is None)
        if rows is None:
            kth[written] = latest.sims[:, -1]
        else:
            at, hit = self._found(role, rows)
            kth[hit] = latest.sims[at[hit], -1]
        return kth

    def _found(self, role: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each of ``rows`` is among the written rows, and whether it is."""
        written = self._written(role)[0]
        if not written.size:
            return np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=bool)
        at = np.minimum(np.searchsorted(written, rows), written.size - 1)
        return at, written[at] == rows

    def _written(self, role: str) -> tuple[np.ndarray, Row]:
        """The rows of ``role`` the journal wrote (sorted) and each one's latest write."""
        if role not in self._latest:
            entries = [(block, row) for r, block, row in self.journal if r == role]
            if not entries:
                self._latest[role] = _NOTHING
            else:
                blocks = np.concatenate([block for block, _ in entries])
                parts = [np.concatenate(p) for p in zip(*(row for _, row in entries), strict=True)]
                last = blocks.size - 1 - np.unique(blocks[::-1], return_index=True)[1]
                self._latest[role] = blocks[last], Row(*(part[last] for part in parts))
        return self._latest[role]


_NOTHING: tuple[np.ndarray, Row] = (
    np.zeros(0, dtype=np.int64),
    Row(*(np.zeros((0, 0)) for _ in range(4))),
)


def stage(base: QueryTargetLookup, new: int) -> StagedLookup | None:
    """An update of ``base`` that will take ``new`` items, computed without copying it; None
    where it needs a copy (see the module's docstring)."""
    if base.hub_k > 0 or len(base) + new > base._capacity:
        return None
    out = StagedLookup.__new__(StagedLookup)
    out.__dict__.update(base.__dict__)
    out.base, out.journal, out._latest = base, [], {}
    # its own names (their new entries go to the first map) and groupings; the same buffers
    out.ids, out.index = list(base.ids), collections.ChainMap({}, base.index)  # type: ignore[assignment]
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
    base = staged.base
    first = len(base)
    base.ids.extend(staged.ids[first:])
    base.index.update((item_id, first + j) for j, item_id in enumerate(staged.ids[first:]))
    base._bind(len(base))
    for role, block, row in staged.journal:
        base._write(role, block, row)
    base.centroids, base.version = staged.centroids, staged.version
    base.exact_updates = staged.exact_updates
    return base


def summary(staged: StagedLookup) -> dict[str, Any]:
    """What an update wrote, for logs and the bench: rows per role, journal bytes."""
    rows = {role: int(staged._written(role)[0].size) for role in ROLES}
    size = sum(block.nbytes + sum(p.nbytes for p in row) for _, block, row in staged.journal)
    return {"rows": rows, "journal_bytes": size}
