"""Repeat flags decided by event time, not by arrival: what the repeat propensities count.

``RepeatModel`` counts, per (user, item): an order line is a re-buy trial, a success when the user
bought the item before; the first look at an item not bought before is a view-return trial, a
success when a purchase follows it. Deciding "before" from the profile as it stood when an event
*arrived* makes the counts depend on how a user's clicks and orders interleave across topics.

Here "before" is by event time. Per item the profile keeps ``[first view ts, first buy ts]`` (None
when never; a view and a buy at the same instant count as view first). The counts a user's events
contribute to one item are then a function of the events alone:

* re-buy: trials = number of orders, successes = orders − 1 (every order but the first);
* view-return: one trial when the first view precedes the first buy (or nothing was bought), and
  one success when it precedes a buy.

An event's flag is the *change* it makes to those counts, so a late event that moves the first
view or the first buy back in time corrects what already-published later observations counted
(the published ones are never rewritten; the sum is what matters and comes out the same):

====  ==========================================================================================
flag  meaning (orders)                       | meaning (views: clicks, dwell, carts)
====  ==========================================================================================
n     re-buy trial                           | view-return trial (first look, nothing bought)
b     re-buy trial + success                 | nothing (looked at after buying it)
v     re-buy trial, view-return success      | nothing (looked at before)
x     re-buy trial, view-return trial − 1    | —
y     re-buy trial + success, view-return    | —
      trial − 1 and success − 1              |
r     —                                      | view-return trial + success (a look before a
                                             | purchase that arrived first)
q     re-buy trial (older observations only) | nothing
====  ==========================================================================================

The table is bounded (``MAX_ITEMS``, dropping the items touched longest ago): an event on a
dropped item is counted as a first contact, the one case where arrival order can still matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: items whose first view/buy times a profile keeps, like the purchase memory (~30 bytes each)
MAX_ITEMS = 300
FLAGS = "bvqnrxy"


def flag_of(first: Sequence[Any] | None, ts: int, is_order: bool) -> str:
    """The flag of one event line on an item whose ``[first view, first buy]`` is ``first``."""
    fv, fb = (None, None) if first is None else (first[0], first[1])
    if is_order:
        if fb is None:
            if fv is None:
                return "n"
            return "v" if fv <= ts else "x"
        return "y" if fv is not None and ts < fv <= fb else "b"
    if fv is None:
        if fb is None:
            return "n"
        return "r" if ts <= fb else "b"
    if ts >= fv:
        return "v"
    # an earlier first look: changes the counts only if it now precedes the first buy
    return "r" if fb is not None and fv > fb >= ts else "v"


def record(firsts: dict[str, list[Any]], ts: int, items: Sequence[str], is_order: bool) -> str:
    """Flags of one event's items (as it changes the counts), then remember its times."""
    flags = []
    for item in items:
        flags.append(flag_of(firsts.get(item), ts, is_order))
    for item in dict.fromkeys(items):
        slot = firsts.setdefault(item, [None, None])
        k = 1 if is_order else 0
        slot[k] = ts if slot[k] is None else min(slot[k], ts)
    if len(firsts) > MAX_ITEMS:
        _forget_oldest(firsts)
    return "".join(flags)


def _forget_oldest(firsts: dict[str, list[Any]]) -> None:
    """Keep the items first touched most recently (ties by item id), with 1/8 headroom so a
    full table is sorted once per ``MAX_ITEMS/8`` new items, not on every event."""

    def latest(kv: tuple[str, list[Any]]) -> tuple[int, str]:
        times = [t for t in kv[1] if t is not None]
        return (max(times), kv[0])

    keep = MAX_ITEMS - MAX_ITEMS // 8
    for item, _ in sorted(firsts.items(), key=latest)[: len(firsts) - keep]:
        del firsts[item]
