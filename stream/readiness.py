"""What a worker's log says when it is up, for whoever waits on it (``local_worker.wait_ready``).

Three marks, since a worker prepares its engine while its consumers join their groups
(``stream.lifecycle``): Faust logs ``READY_MARK`` once its group is joined, the worker
``ASSIGNED_MARK`` once the user topics' partitions are assigned (the user group joins apart from
Faust's, and either may finish first), and ``SERVING_MARK`` once the catalog, lookup and kernels
are in place. A worker serves when all three are in its log, in any order: before the user
partitions are assigned, it owns no user, so a stock-out it sees then refreshes nobody (the
check after the assignment does, later). Kept in a module of its own so that tools waiting for a
worker import no worker code.
"""

from __future__ import annotations

#: Faust's worker log line once the consumer group is joined (``stream.worker.Worker``'s label)
READY_MARK = "[^Worker]: Ready"
#: the worker's log line at each assignment of the user topics' partitions (``stream.app``)
ASSIGNED_MARK = "user partitions assigned"
ASSIGNED_LOG = ASSIGNED_MARK + ": %s"
#: the worker's log line once its engine is prepared; ``%.2f`` is the seconds since start-up
SERVING_MARK = "engine ready"
SERVING_LOG = SERVING_MARK + " %.2f s after start-up began"


def is_serving(log_text: str) -> bool:
    """All three marks in ``log_text`` (the log of one start)."""
    return all(mark in log_text for mark in (READY_MARK, ASSIGNED_MARK, SERVING_MARK))
