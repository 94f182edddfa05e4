"""``asyncio.run`` with a bounded exit, for commands that must stop within seconds.

``asyncio.run`` cancels every task still running when its main coroutine ends and then waits
for all of them without a limit. A Kafka client task that is cancelled mid-start can take
long to finish (seen with `eval --live` interrupted just as its replay began: the command sat
in ``_cancel_all_tasks`` after SIGTERM). Here the leftover tasks get ``grace_s`` to finish
after cancellation; whatever is still running then is abandoned with the loop, and the
caller's ``finally`` blocks go on to stop the processes it started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_bounded(main: Coroutine[Any, Any, T], grace_s: float = 3.0) -> T:
    """Run ``main`` to completion on a new event loop (Ctrl-C raises KeyboardInterrupt here)."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=grace_s))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
