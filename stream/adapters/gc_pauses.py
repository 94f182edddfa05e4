"""Python's garbage collector: its pauses measured, and the start-up heap kept out of them.

A full (generation 2) collection walks every container object the process holds and stops the
event loop meanwhile. A worker's start-up builds most of them (catalog replica, co-occurrence
rows replayed from `learned`, the lookup, Faust's services): ~185k objects on the quick bench's
workload, where one full collection took 85-105 ms — a pause every event in flight waits out, and
it grows with the catalog and the learned relations. ``freeze`` moves what start-up built into
the permanent generation once the worker is ready (``gc.freeze``, after one collection so no
garbage is kept): later full collections walk only what was created since. Those objects are not
freed by the cycle collector any more; they are long-lived read models, freed by reference
counting when replaced. ``RECSTREAM_GC_FREEZE=0`` turns the freeze off.

The pauses are exported as ``recstream_gc_pause_seconds{generation}`` (gc.callbacks, which run
in whichever thread triggered the collection, so a thread-safe prometheus_client histogram).
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Gauge, Histogram

log = logging.getLogger(__name__)


class GcPauses:
    """Times every collection into ``pauses`` while installed; ``freeze`` the heap so far."""

    def __init__(self, pauses: Histogram, frozen: Gauge) -> None:
        self.pauses = pauses
        self.frozen = frozen
        self._children = {g: pauses.labels(str(g)) for g in range(3)}
        self._started = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._on_gc)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self._children[info["generation"]].observe(time.perf_counter() - self._started)
            self._started = 0.0

    def freeze(self) -> int:
        """Collect once, then exempt every object alive from later collections."""
        gc.collect()
        gc.freeze()
        count = gc.get_freeze_count()
        self.frozen.set(count)
        log.info("froze the start-up heap: %d objects no longer walked by the collector", count)
        return count
