"""Co-occurrence pairs that depend on a user's events, not on the order they arrive in.

Kafka orders one user's events only within a topic, so a worker (or the same worker after a
restart) sees the clicks and orders of one user interleaved differently from run to run. Pairs
taken from "what the profile held when the event arrived" would then differ between runs; instead
the pairs are a *function of the set of events*:

    two item entries x < y (ordered by event time, then a hash of the event id, then the item's
    position in its event) form a pair when they come from different events, lie at most
    ``WINDOW_MS`` apart, and fewer than ``GAP`` entries lie between them. The pair is oriented
    earlier → later (x → y) and weighs what the later event weighs.

With events applied in time order this is what the engine always did ("the 10 most recent views
within an hour"); under any other order it still yields the same multiset. Each profile keeps a
short time-ordered ``timeline`` of item entries ``[ts, event hash, position, item, weight,
topic]``. An
arriving entry is inserted at its time position and

* pairs with the ≤ ``GAP`` entries before it and the ≤ ``GAP`` after it (those arrived earlier but
  happened later): the pair is counted by whichever of its two events arrives second;
* un-counts each pair it now separates by ``GAP`` entries (negative weight): a late event between
  two already-paired ones pushes them apart, exactly as if it had arrived in time.

So the net pair weights after any interleaving equal those after time order. What is left out:
the timeline is bounded (see ``_retain``: entries ``RETAIN_MS`` older than the newest event of the
user's slowest topic go, and all but the newest ``RETAIN_MAX``), so pairs may be missed by an
event more than ``RETAIN_MS - WINDOW_MS`` (one hour) older than an earlier event of its own topic,
by a user's first event on a topic when the other topics already ran hours ahead, and when more
than ``RETAIN_MAX`` entries lie in the retained span (a burst of hundreds of events). Two events
with the same time and colliding event-id hashes are ordered by item position (harmless).
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Sequence
from typing import Any

#: entries at most this far apart in event time can pair (a browsing session)
WINDOW_MS = 60 * 60 * 1000
#: entries pair when fewer than this many entries lie between them ("the 10 most recent")
GAP = 10
#: the timeline keeps entries this close to the user's newest event (see the module docstring)
RETAIN_MS = 2 * WINDOW_MS
RETAIN_MAX = 512
#: items of one event that take part in pairs (``CoOccurrence.observe`` caps baskets alike)
MAX_ITEMS = 30

Pair = tuple[str, str, float]
Entry = list[Any]  # [ts, event hash, position, item, weight, topic]


def event_hash(event_id: str) -> int:
    """A stable tie-break for events with the same time (crc32: equal on every worker)."""
    return zlib.crc32(event_id.encode())


def _key(entry: Sequence[Any]) -> tuple[int, int, int]:
    return (int(entry[0]), int(entry[1]), int(entry[2]))


def _pairable(x: Sequence[Any], y: Sequence[Any]) -> bool:
    """Different events, different items, within the window (x before y)."""
    same_event = x[0] == y[0] and x[1] == y[1]
    return not same_event and x[3] != y[3] and y[0] - x[0] <= WINDOW_MS


def record(
    timeline: list[Entry],
    ts: int,
    event_id: str,
    items: Sequence[str],
    weight: float,
    topic: str = "",
) -> list[Pair]:
    """Insert one event's items into ``timeline`` (in place) and return the net pair weights it
    changes, earlier → later, sorted (so the observation's bytes do not depend on set order)."""
    h = event_hash(event_id)
    deltas: dict[tuple[str, str], float] = {}

    def count(x: Sequence[Any], y: Sequence[Any], sign: float) -> None:
        if _pairable(x, y):
            key = (str(x[3]), str(y[3]))
            deltas[key] = deltas.get(key, 0.0) + sign * float(y[4])

    for pos, item in enumerate(list(dict.fromkeys(items))[:MAX_ITEMS]):
        entry: Entry = [ts, h, pos, item, weight, topic]
        p = bisect.bisect_left(timeline, _key(entry), key=_key)
        n = len(timeline)
        for a in range(max(0, p - GAP), p):
            count(timeline[a], entry, 1.0)  # a predecessor, fewer than GAP entries between
        for b in range(p, min(n, p + GAP)):
            count(entry, timeline[b], 1.0)  # arrived earlier, happened later
        for a in range(max(0, p - GAP), p):
            if a + GAP < n:  # the pair (a, a + GAP) had GAP - 1 between, now GAP: un-count
                count(timeline[a], timeline[a + GAP], -1.0)
        timeline.insert(p, entry)
    _retain(timeline)
    return sorted((a, b, w) for (a, b), w in deltas.items() if abs(w) > 1e-12)


def _retain(timeline: list[Entry]) -> None:
    """Drop entries too old to pair with anything that can still arrive in time.

    Each topic reaches a user in time order, so the next event of a topic is no older than the
    newest one seen from it: entries older than the *slowest* topic's newest, minus
    ``RETAIN_MS``, cannot pair any more. (Relative to the newest event overall instead, a topic
    replayed far ahead of another would push out what the lagging one still pairs with.)"""
    if not timeline:
        return
    newest: dict[str, int] = {}
    for entry in timeline:
        newest[entry[5]] = max(newest.get(entry[5], entry[0]), entry[0])
    horizon = min(newest.values()) - RETAIN_MS
    drop = 0
    while drop < len(timeline) and timeline[drop][0] < horizon:
        drop += 1
    drop = max(drop, len(timeline) - RETAIN_MAX)
    if drop:
        del timeline[:drop]
