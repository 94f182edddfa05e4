"""The relation rows of a user's latest query items, read once per burst for every signal.

Two signals read the same rows: ``relation``/``relation_long`` (``signals.relation_scores``,
decayed by clock time) and ``relation_recent`` (``stream.domain.recent_relation``, decayed by
events back). The second used to read its rows one ``related`` call per query: ~15 numpy calls
each, 20 queries, ~40 % of a burst's rank time whatever the candidate count — the fixed cost
of a burst. Here the deepest query set either signal needs is read in one batch
(``relation_rows.rows_of``) and each signal takes the prefix it uses: rows come in query
order, and a row does not depend on which other rows are read with it. Each signal then sums
its prefix per target in one compiled pass (``stream.domain.relation_kernels``); the grouping
by target both used to share (one stable sort and its bookkeeping, ~10 numpy calls) is gone.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.relation_rows import Rows, rows_of
from stream.domain.relations import RelatedItems


@dataclass(frozen=True)
class QueryRows:
    """The known query items among a user's latest queries and their rows (``row_of`` counts
    known queries, in query order, so it is sorted)."""

    positions: list[int]  # per known query: its position in the profile's query list
    items: list[int]  # its item index
    roles: list[str]
    stamps: list[float]
    rows: Rows

    def known_within(self, n: int) -> int:
        """How many known queries are among the first ``n`` of the profile's queries."""
        return bisect_left(self.positions, n)

    def rows_within(self, n: int) -> Rows:
        """The rows of the known queries among the first ``n`` (a prefix of ``rows``)."""
        k = self.known_within(n)
        targets, strengths, row_of = self.rows
        if k >= len(self.positions):
            return self.rows
        end = int(np.searchsorted(row_of, k))
        return targets[:end], strengths[:end], row_of[:end]


def read_query_rows(
    queries: Sequence[Sequence[Any]], catalog: Catalog, relations: RelatedItems, depth: int
) -> QueryRows:
    """Rows of the first ``depth`` ``queries`` ([item_id, role, ts], newest first) whose item
    the catalog knows, in one batch read."""
    index = catalog.index
    asked = queries[:depth]
    got = [index.get(q[0]) for q in asked]  # a few comprehensions: no append per query
    if None in got:  # an item the catalog does not know (yet, or any more): skipped
        positions = [n for n, q in enumerate(got) if q is not None]
        asked = [asked[n] for n in positions]
        items = [q for q in got if q is not None]
    else:
        positions, items = list(range(len(asked))), cast(list[int], got)
    roles: list[str] = [q[1] for q in asked]
    stamps: list[float] = [q[2] for q in asked]
    rows = rows_of(relations, list(zip(items, roles, strict=True)))
    return QueryRows(positions, items, roles, stamps, rows)
