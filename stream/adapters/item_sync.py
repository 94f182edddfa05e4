"""Feeds the Qdrant `items` collection from the worker, in batches, off the event loop.

The worker's Pfeed runtime queues what catalog and stock messages changed (an item's payload and
target embedding, a deletion, a stock flip); ``flush`` writes everything queued in one call per
kind from a thread, keeping only the newest state per item, so a burst of catalog updates costs
one Qdrant batch and never blocks ranking. Qdrant is a serving copy here (ops, ad-hoc "X for
you" queries, other services); ranking reads the lookup, so a failed write is logged and
retried with the next flush rather than stopping the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stream.adapters.qdrant_items import EdgeItemIndex, ItemIndex, item_payload

log = logging.getLogger(__name__)

#: points per upsert call
CHUNK = 256
#: the share of wall time a flush may spend writing while more chunks wait (see ``_write``)
WRITE_DUTY = 0.25


def make_item_index(
    qdrant_url: str | None, api_key: str | None, data_dir: Path, dim: int
) -> ItemIndex:
    """Like ``make_user_sink``: an Edge shard under ``data_dir/qdrant-edge/items`` by default,
    a server when a URL is set, qdrant-client's local mode for ``local://PATH`` (PATH-items)."""
    if qdrant_url is None:
        return EdgeItemIndex(Path(data_dir) / "qdrant-edge" / "items", dim)
    from qdrant_client import QdrantClient  # (not imported on the embedded default: ~1.1 s)

    from stream.adapters.qdrant_items_client import ClientItemIndex

    if qdrant_url.startswith("local://"):
        path = qdrant_url.removeprefix("local://")
        if path in ("", ":memory:"):
            return ClientItemIndex(QdrantClient(location=":memory:"), dim)
        client = QdrantClient(path=f"{path}-items", force_disable_check_same_thread=True)
        return ClientItemIndex(client, dim)
    return ClientItemIndex(QdrantClient(url=qdrant_url, api_key=api_key), dim)


class ItemSync:
    """Queued item writes, newest per item, flushed in batches from a thread.

    The index is opened on first use, in the flushing thread: a Qdrant server that is down when
    the worker starts must not stop the worker (the `users` sink behaves the same way)."""

    def __init__(self, open_index: Callable[[], ItemIndex]) -> None:
        self._open = open_index
        self.index: ItemIndex | None = None
        self.upserts: dict[str, tuple[dict[str, Any], np.ndarray]] = {}
        self.deletes: set[str] = set()
        self.stock: dict[str, int] = {}
        self.written = 0
        self.failures = 0

    def put(self, message: Mapping[str, Any], vector: np.ndarray, available: int) -> None:
        item_id = str(message["item_id"])
        self.deletes.discard(item_id)
        self.stock.pop(item_id, None)  # the payload carries the current stock
        self.upserts[item_id] = (item_payload(message, available), vector)

    def delete(self, item_id: str) -> None:
        self.upserts.pop(item_id, None)
        self.stock.pop(item_id, None)
        self.deletes.add(item_id)

    def set_stock(self, item_id: str, available: int) -> None:
        queued = self.upserts.get(item_id)
        if queued is not None:
            queued[0]["stock"] = "in" if available > 0 else "out"
        elif item_id not in self.deletes:
            self.stock[item_id] = available

    def _index(self) -> ItemIndex:
        if self.index is None:
            self.index = self._open()
        return self.index

    def count(self) -> int:
        """Points in the collection (blocking: call from a thread)."""
        return self._index().count()

    @property
    def pending(self) -> int:
        return len(self.upserts) + len(self.deletes) + len(self.stock)

    async def flush(self, duty: float = WRITE_DUTY) -> None:
        """Write everything queued so far from a thread; on failure re-queue and log. ``duty``:
        the share of wall time the writing may take while chunks wait (1: no pauses, for a
        worker's start, when no user is served yet and the loop has nothing to starve)."""
        if not self.pending:
            return
        upserts, deletes, stock = self.upserts, self.deletes, self.stock
        self.upserts, self.deletes, self.stock = {}, set(), {}
        try:
            await asyncio.to_thread(self._write, upserts, deletes, stock, duty)
        except Exception as exc:  # a serving copy: retried at the next flush
            self.failures += 1
            log.warning("Qdrant items write failed (%s); retrying with the next flush", exc)
            for item_id, entry in upserts.items():
                self.upserts.setdefault(item_id, entry)
            self.deletes |= deletes - self.upserts.keys()
            for item_id, available in stock.items():
                self.stock.setdefault(item_id, available)

    def _write(
        self,
        upserts: dict[str, tuple[dict[str, Any], np.ndarray]],
        deletes: set[str],
        stock: dict[str, int],
        duty: float = WRITE_DUTY,
    ) -> None:
        entries = list(upserts.values())
        took = 0.0
        for start in range(0, len(entries), CHUNK):  # bounded requests (a first full sync)
            if start:
                # Building an Edge point holds the GIL (~60 us an item: ~8 us per payload
                # string), so a bulk catalog change written flat out starved the event loop
                # for seconds; between chunks this thread sleeps, giving it 1 - duty.
                time.sleep(took * (1.0 / duty - 1.0))
            began = time.perf_counter()
            part = entries[start : start + CHUNK]
            self._index().upsert([p for p, _ in part], np.stack([v for _, v in part]))
            took = time.perf_counter() - began
        if deletes:
            self._index().delete(sorted(deletes))
        for item_id, available in stock.items():
            self._index().set_stock(item_id, available)
        self.written += len(upserts) + len(deletes) + len(stock)

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
