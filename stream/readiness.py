"""What a worker's log says when it is up, for whoever waits on it (``local_worker.wait_ready``).

Two marks since a worker prepares its engine while Faust joins the group (``stream.lifecycle``):
Faust logs ``READY_MARK`` once the group is joined, the worker ``SERVING_MARK`` once the catalog,
lookup and kernels are in place; a worker serves when both are in its log, in either order.
Kept in a module of its own so that tools waiting for a worker import no worker code.
"""

from __future__ import annotations

#: Faust's worker log line once the consumer group is joined (``stream.worker.Worker``'s label)
READY_MARK = "[^Worker]: Ready"
#: the worker's log line once its engine is prepared; ``%.2f`` is the seconds since start-up
SERVING_MARK = "engine ready"
SERVING_LOG = SERVING_MARK + " %.2f s after start-up began"


def is_serving(log_text: str) -> bool:
    """Both marks in ``log_text`` (the log of one start)."""
    return READY_MARK in log_text and SERVING_MARK in log_text
