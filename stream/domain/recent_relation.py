"""Relations of the user's latest interactions, decayed by how many events back they are.

The relation signal (``signals.relation_scores``) decays each query item by its *age* in clock
time. Users often act in bursts (a dozen ratings in ten minutes, a basket of thirty lines), and
inside a burst every query is equally "recent" by the clock, although the item acted on just now
says much more about the next one than the item acted on twenty steps ago: what sequential
recommenders exploit. This signal weighs query ``n`` events back by ``decay ** n`` instead, so
it orders a burst by position, whatever its duration.

Events, not query items, are counted: the lines of one basket share their timestamp, so they
share one rank (their order inside the basket says nothing). On the warm-up of a film-rating
stream (1,682 films; lists logged during the warm-up, fitted and validated there) adding this
column to the fit raised the validation Recall@10 of the re-ranked lists from 0.185 to 0.203
with ``decay`` 0.8.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.query_rows import QueryRows, read_query_rows
from stream.domain.relation_kernels import current_slots, scratch_slots
from stream.domain.relation_sums import weighted_sums_at
from stream.domain.relations import RelatedItems

_NONE = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


def event_ranks(queries: list[list[Any]]) -> list[int]:
    """For queries newest first: how many distinct event times are newer than each one."""
    ranks: list[int] = []
    rank, last = -1, None
    for query in queries:
        if query[2] != last:
            rank, last = rank + 1, query[2]
        ranks.append(rank)
    return ranks


def recent_relation(
    queries: list[list[Any]],
    catalog: Catalog,
    relations: RelatedItems,
    decay: float,
    buy_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted target indexes and their summed ``strength × role weight × decay ** rank`` over
    ``queries`` ([item_id, role, ts], newest first)."""
    rows = read_query_rows(queries, catalog, relations, len(queries))
    return recent_from_rows(rows, queries, decay, buy_weight)


def recent_from_rows(
    rows: QueryRows, queries: list[list[Any]], decay: float, buy_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """``recent_relation`` from rows already read for this burst (``read_query_rows`` over at
    least ``queries``). Each target sums its contributions in query order, as one ``related``
    call per query did: a target appears once per row, so the order inside a row is moot."""
    targets, strengths, row_of = rows.rows_within(len(queries))
    if targets.size == 0:
        return _NONE
    ranks = event_ranks(queries)
    known = rows.known_within(len(queries))
    weights = [
        (buy_weight if role == "buy" else 1.0) * decay ** ranks[n]
        for n, role in zip(rows.positions[:known], rows.roles[:known], strict=True)
    ]
    # per target, ``strength × weight`` summed in entry order, in one compiled pass that
    # checks the targets against the slots itself (cheaper than ``scratch_slots``' max/min)
    weighed = np.array(weights, dtype=np.float64)
    uniq, sums, ok = weighted_sums_at(targets, strengths, row_of, weighed, current_slots())
    if not ok:  # a target beyond the slots (they grow) or negative (ValueError)
        uniq, sums, ok = weighted_sums_at(
            targets, strengths, row_of, weighed, scratch_slots(targets)
        )
    return uniq, sums
