"""Which local users hold which item in their last for_you list, so a stock-out re-ranks them;
and which lost which item to the stock (``stream.domain.lost``), so its return re-ranks them.

The index lives in memory and is rebuilt from the stored profiles after a start or rebalance
(the users a worker serves change then). A rebuild reads every local user's last list, so it
must not hold the event loop: it reads the lists from the stored header (``stored_lists``,
no decompression for profiles written since that format) and yields to the loop every
``REBUILD_CHUNK`` users, so batches keep flowing while it runs. Before, it decoded every
profile in one go: ~50 µs a user, 5 s of a frozen loop for 100k users at the first stock-out
after a restart.

The worker starts a rebuild in the background at each rebalance (``rebuild_soon``), so a
stock-out rarely waits for one.

A list committed while a rebuild runs is newer than what the rebuild may have read for that
user: such users are noted and their committed lists win when the rebuilt index is swapped in.

A rebuilt index is ``unchecked``: its lists were read from storage, and an item in them may
have gone out of stock while no worker served those users (the worker was down, the partition
was moving, or the stock-out came before the users' partitions were assigned). ``on_rebuilt``
(the pipeline's check, ``Pipeline.check_held``) runs after every rebuild, so those users get
a fresh list then instead of at their next event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from stream.adapters.state_store import StateStore
from stream.domain.holders import Holders
from stream.domain.profile import stored_lists
from stream.plan import Durability

log = logging.getLogger(__name__)

#: users read between two yields to the event loop (~1-3 ms of work with the header format)
REBUILD_CHUNK = 500


class StockIndex:
    """``Holders`` of the users this worker serves, and how to rebuild it without stalling."""

    def __init__(self, store: StateStore, durability: Durability | None = None) -> None:
        self.store = store
        self.durability = durability
        self.holders = Holders()
        #: the items each user's list lost to stock-outs (``stream.domain.lost``): whom an
        #: item's return refreshes (only users who lost some are in it)
        self.lost = Holders()
        #: after a (re)start or rebalance the index no longer matches the local users; it is
        #: rebuilt from the stored profiles' last lists before the next stock-out refresh
        self.stale = True
        self._lock = asyncio.Lock()
        self._touched: set[str] | None = None  # users whose list changed during a rebuild
        self._background: set[asyncio.Task[None]] = set()
        self.rebuilds = 0
        #: the lists were read from storage and not yet checked against the stock since
        self.unchecked = False
        #: awaited after each rebuild, still holding the rebuild's lock (module docstring)
        self.on_rebuilt: Callable[[], Awaitable[None]] | None = None

    def update(self, user_id: str, items: Sequence[str], lost: Sequence[str] = ()) -> None:
        """A user's new list, and the items their lists lost to stock-outs."""
        _index(self.holders, self.lost, user_id, items, lost)
        if self._touched is not None:
            self._touched.add(user_id)

    def drop(self, user_id: str) -> None:
        self.holders.drop(user_id)
        self.lost.drop(user_id)
        if self._touched is not None:
            self._touched.add(user_id)

    def holding(self, item_id: str) -> list[str]:
        return self.holders.holding(item_id)

    def lost_by(self, item_id: str) -> list[str]:
        """The users whose lists lost ``item_id`` to the stock (sorted)."""
        return self.lost.holding(item_id)

    def __len__(self) -> int:
        """Users with a list in the index."""
        return len(self.holders.by_user)

    def rebuild_soon(self) -> None:
        """Rebuild in the background now (after a rebalance), so the next stock-out finds the
        index ready instead of waiting for it; a failure is logged and leaves it stale, so that
        stock-out rebuilds it again."""
        task = asyncio.get_running_loop().create_task(self._ensure_logged())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _ensure_logged(self) -> None:
        try:
            await self.ensure()
        except Exception:  # e.g. the consumer between generations: the lazy path retries
            log.warning("stock index rebuild failed; retried at the next stock-out", exc_info=True)

    async def ensure(self) -> None:
        """Rebuild when stale, then ``on_rebuilt``; one rebuild at a time (a caller arriving
        meanwhile waits)."""
        async with self._lock:
            if self.stale:
                await self._rebuild()
                if self.on_rebuilt is not None:
                    await self.on_rebuilt()

    async def _rebuild(self) -> None:
        if self.durability is not None:
            await self.durability.recover(self.durability.assigned())
        started = time.perf_counter()
        self.stale = False  # a rebalance from here on marks it stale again
        self._touched = set()
        fresh, lost = Holders(), Holders()
        try:
            for n, (partition, user_id) in enumerate(self.store.owned(), 1):
                raw = self.store.get(user_id, partition=partition)
                if raw is not None:
                    _index(fresh, lost, user_id, *stored_lists(raw))
                if n % REBUILD_CHUNK == 0:
                    await asyncio.sleep(0)  # let batches run
            for user_id in self._touched:  # committed while this ran: newer than what it read
                items = self.holders.by_user.get(user_id)
                if items is None:
                    fresh.drop(user_id)
                    lost.drop(user_id)
                else:
                    _index(fresh, lost, user_id, items, self.lost.by_user.get(user_id, ()))
        except BaseException:
            self.stale = True
            raise
        finally:
            self._touched = None
        self.holders, self.lost = fresh, lost
        self.unchecked = True
        self.rebuilds += 1
        log.info(
            "stock index rebuilt: %d users hold lists (%.2f s)",
            len(fresh.by_user),
            time.perf_counter() - started,
        )


def _index(
    holders: Holders, lost: Holders, user_id: str, items: Sequence[str], gone: Sequence[str]
) -> None:
    """One user's list into ``holders``, and what it lost into ``lost`` (only users who lost
    something are kept there)."""
    holders.update(user_id, items)
    if gone:
        lost.update(user_id, gone)
    else:
        lost.drop(user_id)
