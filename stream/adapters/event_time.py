"""Faust's consumer scheduler in event time: a fetch's records handed over oldest first.

Faust's default scheduler hands a fetch's records over round-robin: one record of each topic
in turn, and of each partition in turn inside a topic. A shopper's session is spread over
several topics (clicks, dwell, carts, orders) whose rates differ, so after a few hundred
records round-robin has taken the same *count* from each topic, i.e. very different spans of
*time*: the busy topic's records lag the quiet ones'. A batch then holds a user's click
without the dwell and cart that came with it, which land in a later batch and cost a second
ranking. Measured while draining the bench backlog (one worker, batches of 256, two pairs):
0.43-0.45 lists an event with round-robin, 0.27-0.28 in event time (as the in-process bench
batches the same events); worker CPU 695 / 840 against 506 / 531 µs an event, 1,463 / 1,203
against 1,983 / 1,919 events/s.

Here a fetch's records are sorted by timestamp, so a batch is a window of time across topics,
as the offline evaluator and the in-process bench cut it. A partition's own order is never
changed: its records are keyed by the running maximum of their timestamps, which never
decreases inside a partition, then by their place in it. Records of equal time (a record's
time is the producer's, in milliseconds: a burst sent at once shares it) go by topic name,
then partition: an order that does not depend on what else a fetch holds, so a worker that
restarts from its committed offsets applies a user's same-instant events of two topics in
the order an uninterrupted one did (round-robin, as a tie-break, did depend on it: the
SIGKILL test's profiles then differed). Offsets, acks and at-least-once are untouched; only
the interleaving of partitions differs. A fetch holds what the broker had for each partition,
so the sort orders time within a fetch; records that a later fetch brings are not waited for.

Under a backlog (a fetch holding more records than ``backlog``, by default two batches) the
records go partition by partition instead, a batch's worth at a time: partition 0's first
batch of records (in event time across its topics), then partition 1's, ..., then partition
0's second, and so on. User topics are co-partitioned, so a user's records all sit in one
partition number and keep exactly the order above; what changes is which users share a
batch. A batch then holds one partition's shoppers over a span of time several times longer,
so more of each one's session coalesces into one ranking. Draining the bench backlog (one
worker, 40,000 events): 0.28 lists an event -> 0.13, worker CPU 533-538 -> 308-369 us an event,
1,765 / 1,767 -> 3,109 / 2,575 events/s with whole partitions one after another, 1,787 ->
2,774 / 2,729 with the partitions taking turns. Below the threshold nothing changes: a
fetch that fits in a batch or two is ranked about as soon whatever its order, and a steady load
below capacity fetches a few records at a time. The price, only under a backlog: a partition's
records wait behind a batch of each other partition's records, not only behind older ones
(runs of a whole partition at a time, the first version, made them wait behind everything the
fetch held of the partitions before them: up to ~1 MB a partition).
``RECSTREAM_BACKLOG_BY_PARTITION=0`` keeps event time across partitions at any size.

The trade-off: round-robin exists so that one partition's large backlog does not hold back
another's records in the same fetch. In event time a partition's fresh records wait behind
older ones of other partitions fetched with them; they are older, and the batch that answers
them comes sooner because each batch costs fewer rankings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from operator import itemgetter
from typing import Any

from faust.transport.utils import DefaultSchedulingStrategy

_KEY = itemgetter(0, 1, 2, 3)
_RUN = itemgetter(0, 1)


def in_event_time(
    records: Mapping[Any, list[Any]], backlog: int | None = None
) -> Iterator[tuple[Any, Any]]:
    """``(tp, record)`` of every partition, oldest first, each partition in order; records of
    equal time by topic name, then partition (the same order whatever else was fetched). More
    than ``backlog`` records: runs of ``backlog // 2`` records (a batch) of one partition
    number, each in that order, the partition numbers taking turns."""
    keyed: list[tuple[float, str, int, int, Any, Any]] = []
    for tp, recs in records.items():
        topic, partition = str(getattr(tp, "topic", tp)), int(getattr(tp, "partition", 0))
        high = float("-inf")
        for n, record in enumerate(recs):
            stamp = getattr(record, "timestamp", None)
            if stamp is not None and stamp > high:
                high = stamp
            keyed.append((high, topic, partition, n, tp, record))
    keyed.sort(key=_KEY)
    if backlog is not None and len(keyed) > backlog:
        keyed = _partition_runs(keyed, max(1, backlog // 2))
    for *_, tp, record in keyed:
        yield tp, record


def _partition_runs(keyed: list[Any], run: int) -> list[Any]:
    """``keyed`` (in event time) as runs of ``run`` records of one partition number: a record's
    run is its place among its partition number's records, so a partition's (and a user's)
    order is kept, and every partition number has its turn before any has a second one."""
    seen: dict[int, int] = {}
    ranked = []
    for entry in keyed:
        partition = entry[2]
        place = seen.get(partition, 0)
        seen[partition] = place + 1
        ranked.append((place // run, partition, entry))
    ranked.sort(key=_RUN)
    return [entry for *_, entry in ranked]


class EventTimeScheduling(DefaultSchedulingStrategy):
    """``ConsumerScheduler`` for Faust: see the module docstring. ``backlog`` None: event time
    across partitions at any size (``scheduling`` makes a class with a threshold)."""

    backlog: int | None = None

    def iterate(self, records: Mapping[Any, list[Any]]) -> Iterator[tuple[Any, Any]]:
        return in_event_time(records, self.backlog)


def scheduling(backlog: int | None) -> type[EventTimeScheduling]:
    """The scheduler class Faust instantiates (it takes no arguments), with ``backlog`` set."""
    return type("EventTimeScheduling", (EventTimeScheduling,), {"backlog": backlog})
