"""The stock index rebuild: right lists, no stalled loop, and lists committed meanwhile win."""

from __future__ import annotations

import asyncio

import orjson

from stream.adapters.state_store import MemoryStore
from stream.domain.profile import UserProfile
from stream.plan import Durability
from stream.stock_index import REBUILD_CHUNK, StockIndex


class LoggingStore(MemoryStore):
    """Records each read in a log shared with other tasks (to see how they interleave)."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def get(self, key: str, partition: int | None = None) -> bytes | None:
        self.log.append("get")
        return super().get(key, partition)


def store_with(users: int, log: list[str] | None = None) -> MemoryStore:
    store = LoggingStore(log) if log is not None else MemoryStore()
    for n in range(users):
        profile = UserProfile(user_id=f"u{n}", last_items=[f"i{n % 3}", "shared"])
        store.set(f"u{n}", profile.to_bytes())
    return store


def test_a_rebuild_indexes_every_stored_list_whatever_format_wrote_it() -> None:
    store = store_with(5)
    old = UserProfile(user_id="legacy", last_items=["i9"]).to_dict()
    store.set("legacy", orjson.dumps(old))  # the first stored format: plain JSON
    index = StockIndex(store)
    asyncio.run(index.ensure())
    assert index.holding("i0") == ["u0", "u3"]
    assert index.holding("i9") == ["legacy"]
    assert len(index.holding("shared")) == 5 and len(index) == 6
    assert not index.stale and index.rebuilds == 1


def test_a_rebuild_lets_other_tasks_run_between_chunks() -> None:
    log: list[str] = []
    store = store_with(3 * REBUILD_CHUNK, log)

    async def main() -> None:
        index = StockIndex(store)
        done = asyncio.Event()

        async def other_work() -> None:
            while not done.is_set():
                log.append("tick")
                await asyncio.sleep(0)

        ticker = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        await index.ensure()
        done.set()
        await ticker

    asyncio.run(main())
    reads = [n for n, entry in enumerate(log) if entry == "get"]
    ticks_during = [
        n for n, entry in enumerate(log) if entry == "tick" and reads[0] < n < reads[-1]
    ]
    assert len(ticks_during) >= 2  # not one uninterrupted pass over every user


def test_lists_committed_during_a_rebuild_win_over_what_it_read() -> None:
    store = store_with(2 * REBUILD_CHUNK)

    async def main() -> StockIndex:
        index = StockIndex(store)

        async def commit_meanwhile() -> None:
            await asyncio.sleep(0)  # runs at the rebuild's first yield: u0, u1 already read
            assert index.rebuilds == 0  # (the rebuild is still running)
            index.update("u0", ["fresh"])
            index.drop("u1")

        task = asyncio.create_task(commit_meanwhile())
        await index.ensure()
        await task
        return index

    index = asyncio.run(main())
    assert index.holding("fresh") == ["u0"]
    assert "u0" not in index.holding("shared") and "u1" not in index.holding("shared")
    assert index.holders.by_user["u0"] == ("fresh",) and "u1" not in index.holders.by_user


def test_one_rebuild_for_concurrent_callers_and_again_after_a_rebalance() -> None:
    store = store_with(3)
    recovered: list[set[int]] = []

    async def recover(partitions: set[int]) -> None:
        recovered.append(partitions)

    durability = Durability("changelog", lambda p, o: None, recover, lambda: {0, 2})
    index = StockIndex(store, durability)

    async def main() -> None:
        await asyncio.gather(index.ensure(), index.ensure(), index.ensure())
        assert index.rebuilds == 1
        index.stale = True  # a rebalance
        await index.ensure()

    asyncio.run(main())
    assert index.rebuilds == 2
    assert recovered == [{0, 2}, {0, 2}]  # state recovered before it is read


def test_rebuild_soon_runs_in_the_background_and_a_failure_leaves_it_stale() -> None:
    store = store_with(3)
    calls: list[int] = []

    async def recover(partitions: set[int]) -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("consumer between generations")

    index = StockIndex(store, Durability("changelog", lambda p, o: None, recover, lambda: {0}))

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    async def main() -> None:
        index.rebuild_soon()
        await settle()
        assert index.stale and index.rebuilds == 0  # failed: logged, the lazy path retries
        index.rebuild_soon()
        await settle()
        assert not index.stale and index.rebuilds == 1
        assert index.holding("i1") == ["u1"]

    asyncio.run(main())
