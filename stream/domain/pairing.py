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
the timeline is bounded (``_retain`` keeps what events arriving in per-topic time order can
still need), so pairs may be missed by an event older than an earlier event of its own topic
(out of order within a topic), by a user's first event on a topic arriving after more than
``SINGLE_TOPIC_MAX`` entries of another topic, and when more than ``RETAIN_MAX`` entries are
needed at once (a topic running hundreds of events ahead). Two events with the same time and
colliding event-id hashes are ordered by item position (harmless).
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
#: what the timeline keeps (see ``_retain``): with one topic so far, the newest this many entries;
#: in any case at most ``RETAIN_MAX`` (a burst of hundreds of events in one session)
SINGLE_TOPIC_MAX = 256
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
        # pairable: different events, different items, within the window (x before y);
        # inline, not a helper call: this runs ~10 times per item of every event
        if (x[0] != y[0] or x[1] != y[1]) and x[3] != y[3] and y[0] - x[0] <= WINDOW_MS:
            key = (str(x[3]), str(y[3]))
            deltas[key] = deltas.get(key, 0.0) + sign * float(y[4])

    gain = float(weight)  # what each pair with a predecessor counts
    for pos, item in enumerate(list(dict.fromkeys(items))[:MAX_ITEMS]):
        entry: Entry = [ts, h, pos, item, weight, topic]
        n, at = len(timeline), _key(entry)
        # an event newer than every entry (events in time order: nearly all) goes at the end,
        # with no search and no entry after it to pair with or separate
        p = n if not n or _key(timeline[-1]) < at else bisect.bisect_left(timeline, at, key=_key)
        later = str(item)
        for a in range(max(0, p - GAP), p):
            # a predecessor, fewer than GAP entries between: ``count(x, entry, 1.0)`` inlined
            # (the same tests and the same float: 1.0 · gain is gain); most events run only this
            x = timeline[a]
            if (x[0] != ts or x[1] != h) and x[3] != item and ts - x[0] <= WINDOW_MS:
                key = (str(x[3]), later)
                deltas[key] = deltas.get(key, 0.0) + gain
        if p < n:
            for b in range(p, min(n, p + GAP)):
                count(entry, timeline[b], 1.0)  # arrived earlier, happened later
            for a in range(max(0, p - GAP), p):
                if a + GAP < n:  # the pair (a, a + GAP) had GAP - 1 between, now GAP: un-count
                    count(timeline[a], timeline[a + GAP], -1.0)
        timeline.insert(p, entry)
    _retain(timeline)
    return sorted((a, b, w) for (a, b), w in deltas.items() if abs(w) > 1e-12)


def _retain(timeline: list[Entry]) -> None:
    """Drop the entries no event that can still arrive would pair with or separate.

    Each topic reaches a user in time order, so no future event is older than ``slowest``, the
    newest event of the user's slowest topic. An entry before it with ``GAP`` entries between
    it and ``slowest`` can never again lie fewer than ``GAP`` entries from a new one, nor belong
    to a pair a new one separates: only the last ``GAP`` entries before ``slowest`` (and those
    at most ``WINDOW_MS`` older) are kept, plus everything after. Users in step keep a dozen
    entries; a topic replayed far ahead of another keeps what the lagging one still pairs with.

    A topic the user has no entry of yet cannot be waited for: with one topic only, the newest
    ``SINGLE_TOPIC_MAX`` entries stay, for the first events of another topic arriving late."""
    # the timeline is in time order, so each topic's last entry is its newest
    newest: dict[str, int] = {entry[5]: entry[0] for entry in timeline}
    if len(newest) > 1:
        slowest = min(newest.values())
        before = bisect.bisect_left(timeline, slowest, key=lambda e: e[0])
        drop = max(0, before - GAP)
        while drop < before and timeline[drop][0] < slowest - WINDOW_MS:
            drop += 1
    else:
        drop = len(timeline) - SINGLE_TOPIC_MAX
    drop = max(drop, len(timeline) - RETAIN_MAX)
    if drop > 0:
        del timeline[:drop]
