"""Which event loop a worker runs on: uvloop by default, Python's own on request.

A worker runs two event loops: its own (agents, the batch handler, sends, followers) and the
one mode starts in a thread for Faust's consumer. Under a steady load much of a worker's CPU is
loop machinery rather than ranking: at 100 events/s py-spy put ~16 % of the samples that held
the GIL in asyncio's own code (`_run_once`, handles, timers, selector), more than aiokafka or
Faust. uvloop runs the same loops on libuv with that machinery in C. Measured on the bundled
broker, one worker at fixed rates, Python's loop and uvloop alternating: at 300 events/s the
worker used less CPU in 5 of 5 pairs (15.5 against 15.0 s in 20 s, -3.5 %) while it handled
~30 % more, smaller batches; at 100 events/s -5 % (2 of 3 pairs). Draining a backlog, and at a
load that keeps the worker busy, nothing changed (three 40,000-event drains each: 1,053 against
1,061 events/s); latency moved within the noise. A small gain, but at no cost: the same loops,
with less of the worker's CPU spent on running them. The bench's Faust baselines, relay and
bare consumer run on the same loop, so its ratios compare like with like.

The policy must be set before the first loop is made: mode creates the consumer thread's loop
with ``asyncio.new_event_loop()``, so both loops follow it. ``asyncio`` keeps Python's loop
(for a platform without uvloop wheels, or to compare).
"""

from __future__ import annotations

import asyncio

#: what ``RECSTREAM_EVENT_LOOP`` accepts
EVENT_LOOPS = ("uvloop", "asyncio")


def use_event_loop(name: str) -> str:
    """Make ``name`` the loop every later ``asyncio.new_event_loop()`` of this process gives;
    returns the name. ValueError for anything but ``EVENT_LOOPS``."""
    if name not in EVENT_LOOPS:
        raise ValueError(f"event loop must be one of {', '.join(EVENT_LOOPS)}, got {name!r}")
    if name == "asyncio":
        asyncio.set_event_loop_policy(None)  # Python's default policy
        return name
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return name
