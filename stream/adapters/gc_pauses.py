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

The youngest generation is collected every 10,000 net container allocations once the worker is
ready (``set_gen0``; Python's default is 700). Every event allocates hundreds of short-lived
dicts, lists and tuples, so at 700 a draining worker ran ~110 youngest, ~10 middle and ~1 full
collections a second: 0.77-0.86 s of pauses in 15 s of a 20,000-event drain, 5-6 % of its main
thread's CPU. At 10,000 most of those objects are freed by reference counting before any
collection sees them, and survivors are walked ~10x less often: 0.35-0.46 s in the same drains,
no full collection in 15 s. Three A/B pairs back to back: 739 / 660 / 852 events/s at 700 against
778 / 697 / 828 at 10,000 (the ~5 % saved is within this machine's noise). The price: a youngest
collection takes ~3 ms instead of ~0.1 ms and a middle one ~7 ms instead of ~2 ms (both shorter
than the ~25 ms full collections they mostly replace), and cyclic garbage is kept a little
longer. ``RECSTREAM_GC_GEN0_THRESHOLD=0`` keeps Python's default.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Iterator
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
        self._previous: tuple[int, int, int] | None = None  # thresholds before ``set_gen0``

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._on_gc)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False
        if self._previous is not None:
            gc.set_threshold(*self._previous)
            self._previous = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self._children[info["generation"]].observe(time.perf_counter() - self._started)
            self._started = 0.0

    def set_gen0(self, threshold: int) -> None:
        """Collect the youngest generation every ``threshold`` net allocations (0: leave the
        thresholds alone); ``uninstall`` puts the previous ones back."""
        if threshold < 0:
            raise ValueError(f"gen0 threshold must be >= 0, got {threshold}")
        if threshold:
            if self._previous is None:
                self._previous = gc.get_threshold()
            gc.set_threshold(threshold, *gc.get_threshold()[1:])

    def freeze(self) -> int:
        """Collect once, then exempt every object alive from later collections."""
        gc.collect()
        gc.freeze()
        count = gc.get_freeze_count()
        self.frozen.set(count)
        log.info("froze the start-up heap: %d objects no longer walked by the collector", count)
        return count


@contextlib.contextmanager
def as_worker(freeze: bool, gen0_threshold: int) -> Iterator[None]:
    """The collector as a ready worker runs it (``freeze``: the heap so far frozen;
    ``gen0_threshold``: 0 leaves it), put back afterwards: what an in-process measurement of
    the worker's code should run under, or its timings carry collections a worker does not
    make (a full collection of the unfrozen heap landed in one burst of the quick bench's
    in-process run, ~130 ms)."""
    if gen0_threshold < 0:
        raise ValueError(f"gen0 threshold must be >= 0, got {gen0_threshold}")
    before = gc.get_threshold()
    # ``unfreeze`` thaws everything: a heap frozen before (by someone else) stays frozen
    thaw = freeze and gc.get_freeze_count() == 0
    if freeze:
        gc.collect()
        gc.freeze()
    if gen0_threshold:
        gc.set_threshold(gen0_threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if thaw:
            gc.unfreeze()
