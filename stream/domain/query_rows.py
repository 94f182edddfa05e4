"""The relation rows of a user's latest query items, read once per burst for every signal.

Two signals read the same rows: ``relation``/``relation_long`` (``signals.relation_scores``,
decayed by clock time) and ``relation_recent`` (``stream.domain.recent_relation``, decayed by
events back). The second used to read its rows one ``related`` call per query: ~15 numpy calls
each, 20 queries, ~40 % of a burst's rank time whatever the candidate count — the fixed cost
of a burst. Here the deepest query set either signal needs is read in one batch
(``relation_rows.rows_of``) and each signal takes the prefix it uses: rows come in query
order, and a row does not depend on which other rows are read with it. Both signals also group
their entries by target: the grouping of every row read (one stable sort) is made once
(``QueryRows.groups``) and each signal sums over its prefix with it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.relation_rows import Rows, rows_of
from stream.domain.relations import RelatedItems


@dataclass(frozen=True)
class TargetGroups:
    """The entries of every row read, grouped by target. ``bincount(inv[:end], w)`` sums any
    prefix's weights per target in entry order, as a grouping of the prefix alone would."""

    uniq: np.ndarray  # the distinct targets, sorted
    inv: np.ndarray  # per entry: its target's position in ``uniq``
    order: np.ndarray  # the entries by target, stable (query order inside a target)
    starts: np.ndarray  # per target: where its entries begin in ``order``
    group: np.ndarray  # per position in ``order``: its target's position in ``uniq``


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

    @cached_property
    def groups(self) -> TargetGroups:
        """Every entry of ``rows`` grouped by target (one stable sort, made on first use)."""
        targets = self.rows[0]
        order = np.argsort(targets, kind="stable")
        ordered = targets[order]
        head = np.empty(order.size, dtype=bool)
        head[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=head[1:])
        group = np.cumsum(head) - 1
        inv = np.empty_like(group)
        inv[order] = group
        return TargetGroups(ordered[head], inv, order, np.flatnonzero(head), group)


def read_query_rows(
    queries: Sequence[Sequence[Any]], catalog: Catalog, relations: RelatedItems, depth: int
) -> QueryRows:
    """Rows of the first ``depth`` ``queries`` ([item_id, role, ts], newest first) whose item
    the catalog knows, in one batch read."""
    index = catalog.index
    positions: list[int] = []
    items: list[int] = []
    roles: list[str] = []
    stamps: list[float] = []
    for n, (item_id, role, ts) in enumerate(queries[:depth]):
        q = index.get(item_id)
        if q is None:
            continue
        positions.append(n)
        items.append(q)
        roles.append(role)
        stamps.append(ts)
    rows = rows_of(relations, list(zip(items, roles, strict=True)))
    return QueryRows(positions, items, roles, stamps, rows)
