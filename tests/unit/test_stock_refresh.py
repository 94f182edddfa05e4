"""Stock-outs nobody acted on: a rebuilt stock index is checked against the stock, once.

The failure this guards against (seen in CI): a stock-out read before the worker's user
partitions were assigned found an empty index, and the holders' lists kept the item until
each user's next event. The same holds for stock-outs during a restart or a partition move."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson

from stream.adapters.state_store import MemoryStore
from stream.domain.catalog import Catalog, StockChange
from stream.domain.holders import Holders
from stream.domain.profile import UserProfile
from stream.plan import Record
from stream.stock_refresh import CHECK_CHUNK, SEND_CHUNK, StockOuts, held_out_of_stock
from tests.unit.test_erasure import T0, Worker, click, forget

T = TypeVar("T")


def stock(item: str, available: int, event_id: str, ts: int = T0) -> dict[str, object]:
    return {"event_id": event_id, "item_id": item, "ts": ts, "available": available}


def test_the_cause_is_kept_while_the_item_is_out_or_back_and_stamped_no_later_than_now() -> None:
    outs = StockOuts()
    outs.note("i1", StockChange(1, True, False), stock("i1", 0, "s-out", ts=T0 + 50))
    body = orjson.loads(outs.refresh("u1", "i1", now_ms=T0 + 10))  # a clock running ahead
    assert body == {"event_id": "s-out", "user_id": "u1", "ts": T0 + 10, "item_id": "i1"}
    assert orjson.loads(outs.refresh("u1", "i1", now_ms=T0 + 99))["ts"] == T0 + 50
    # a deletion from an offline message without a time: stamped now
    outs.note("i2", StockChange(2, True, False), {"event_id": "catalog:i2", "ts": None})
    assert orjson.loads(outs.refresh("u1", "i2", now_ms=T0 + 5))["ts"] == T0 + 5
    outs.note("i1", StockChange(1, False, True), stock("i1", 3, "s-back"))
    body = orjson.loads(outs.refresh("u1", "i1", now_ms=T0 + 99))  # back: named after that
    assert body["event_id"] == "s-back" and body["ts"] == T0
    assert set(outs.causes) == {"i2"} and set(outs.returns) == {"i1"}
    outs.note("i1", StockChange(1, True, False), stock("i1", 0, "s-out-again"))
    assert set(outs.returns) == set() and outs.causes["i1"] == ("s-out-again", T0)
    body = orjson.loads(outs.refresh("u1", "i7", now_ms=T0 + 99))  # no message on record
    assert body["event_id"] == "stock-check:i7" and body["ts"] == T0 + 99
    # a restock replayed before its item's catalog entry changes nothing the replica knew of:
    # the first level seen in stock names the refresh, and later levels leave that name
    outs.note("i7", StockChange(7, False, False), stock("i7", 4, "s-back-7"))
    outs.note("i7", StockChange(7, False, False), stock("i7", 3, "s-level-7"))
    assert orjson.loads(outs.refresh("u1", "i7", now_ms=T0 + 99))["event_id"] == "s-back-7"
    outs.note("i2", StockChange(2, False, False), stock("i2", 0, "s-still-out"))  # out still
    assert outs.causes["i2"][0] == "catalog:i2" and "i2" not in outs.returns


def catalog_of(n: int, out: set[int]) -> Catalog:
    catalog = Catalog()
    for i in range(n):
        catalog.upsert({"item_id": f"i{i}", "title": f"Item {i}"})
        catalog.set_stock(f"i{i}", 0 if i in out else 5)
    return catalog


def test_held_out_of_stock_names_each_holder_once_and_ignores_unknown_items() -> None:
    holders = Holders()
    holders.update("a", ["i0", "i1", "i2"])  # two items out: one entry
    holders.update("b", ["i0", "gone"])  # an item the catalog does not know: not a stock-out
    holders.update("c", ["i2"])
    catalog = catalog_of(4, out={1, 2})
    holders.update("d", ["i3", "i0"])
    catalog.upsert({"item_id": "i3", "title": "Item 3", "deleted": True})  # in stock, deleted
    held = asyncio.run(held_out_of_stock(holders, catalog))
    assert set(held) == {"a", "c", "d"}
    assert held["a"] in {"i1", "i2"} and held["c"] == "i2" and held["d"] == "i3"


def beside_a_ticker(
    work: Callable[[], Awaitable[T]], tick: Callable[[], int]
) -> tuple[T, list[int]]:
    """Run ``work`` beside another task that records ``tick()`` each time it gets the event
    loop: ``work``'s result, and what was recorded while it ran."""
    ticks: list[int] = []

    async def main() -> T:
        done = asyncio.Event()

        async def other() -> None:
            while not done.is_set():
                ticks.append(tick())
                await asyncio.sleep(0)

        ticker = asyncio.create_task(other())
        await asyncio.sleep(0)
        before = len(ticks)
        result = await work()
        del ticks[:before]
        done.set()
        await ticker
        return result

    result = asyncio.run(main())
    return result, ticks


def test_held_out_of_stock_lets_other_tasks_run_between_chunks() -> None:
    holders = Holders()
    for i in range(3 * CHECK_CHUNK):
        holders.update(f"u{i}", [f"i{i}"])
    catalog = catalog_of(3 * CHECK_CHUNK, out={0, 3 * CHECK_CHUNK - 1})
    held, ticks = beside_a_ticker(lambda: held_out_of_stock(holders, catalog), lambda: 1)
    assert len(ticks) >= 2  # it yielded at least between its chunks
    assert held == {"u0": "i0", f"u{3 * CHECK_CHUNK - 1}": f"i{3 * CHECK_CHUNK - 1}"}


def test_one_item_held_by_many_is_checked_in_chunks_too() -> None:
    holders = Holders()
    for i in range(3 * CHECK_CHUNK):
        holders.update(f"u{i}", ["i0"])
    catalog = catalog_of(1, out={0})
    held, ticks = beside_a_ticker(lambda: held_out_of_stock(holders, catalog), lambda: 1)
    assert len(ticks) >= 2  # it yielded inside the one item's holders
    assert len(held) == 3 * CHECK_CHUNK


def stored(w: Worker, user: str, items: list[str]) -> None:
    """A profile as a worker left it: its last for_you list holds ``items``."""
    profile = UserProfile(user_id=user, last_items=items, version=1, last_ts=T0)
    w.store.set(user, profile.to_bytes(), partition=0)


def refreshes(w: Worker) -> list[dict[str, object]]:
    return [orjson.loads(v) for t, v in w.sent if t == "refresh" and v is not None]


def go_out(w: Worker, item: str, event_id: str) -> None:
    """The replica applies a stock-out and tells the pipeline."""
    change = w.engine.catalog.set_stock(item, 0)
    assert change is not None and change.went_out
    asyncio.run(w.pipeline.on_stock_change(change, stock(item, 0, event_id)))


def test_a_stock_out_read_before_ready_refreshes_its_holders_at_ready() -> None:
    w = Worker()
    w.pipeline.ready.clear()  # a restart: the replica replays the stock history first
    stored(w, "u1", ["i3", "i4"])
    stored(w, "u2", ["i4", "i5"])
    go_out(w, "i3", "s-out-3")
    assert refreshes(w) == []  # nobody acted on it then
    asyncio.run(w.pipeline.stock.ensure())  # the rebuild at the assignment, before ready
    assert refreshes(w) == [] and w.pipeline.stock.unchecked  # the stock replay may be partial
    ready_now(w)
    sent = refreshes(w)
    assert [(m["user_id"], m["event_id"], m["item_id"]) for m in sent] == [
        ("u1", "s-out-3", "i3")
    ]  # named after the stock event that took the item out; u2 holds nothing out
    asyncio.run(w.pipeline.check_held())
    assert len(refreshes(w)) == 1  # once per rebuild
    # the refresh, consumed like any other: a list without the item, answering that event
    body = orjson.dumps(sent[0])
    w.batch(Record("refresh", 0, 1, b"u1", body, T0 + 1))
    lists = [orjson.loads(v) for t, v in w.sent if t == "recommendations" and v]
    assert lists[-1]["trigger"] == {"event_id": "s-out-3", "topic": "stock", "ts": T0}
    assert "i3" not in [it["item_id"] for it in lists[-1]["items"]]


def test_a_stock_out_before_the_assignment_is_caught_by_the_rebuild_after_it() -> None:
    w = Worker()
    stored(w, "u1", ["i3", "i4"])
    index = w.pipeline.stock
    index.store = owned = _Owned(w.store)  # owns no partition yet
    go_out(w, "i3", "s-out-3")  # the index rebuilds over no user: nobody to refresh
    assert refreshes(w) == [] and index.rebuilds == 1
    owned.assigned = True
    index.stale = True  # the assignment (``stream.app``'s ``rebalanced``)
    asyncio.run(index.ensure())
    assert [(m["user_id"], m["event_id"]) for m in refreshes(w)] == [("u1", "s-out-3")]


def test_a_live_stock_out_after_the_check_refreshes_only_its_holders() -> None:
    w = Worker()
    stored(w, "u1", ["i3", "i4"])
    stored(w, "u2", ["i4", "i5"])
    stored(w, "u3", ["i6"])
    go_out(w, "i4", "s-out-4")  # first stock-out: rebuild + check (this item is in it)
    assert sorted(m["user_id"] for m in refreshes(w)) == ["u1", "u2"]
    go_out(w, "i6", "s-out-6")
    assert [(m["user_id"], m["event_id"]) for m in refreshes(w)[2:]] == [("u3", "s-out-6")]


class _Owned:
    """A store seen through an assignment: no user is owned until its partitions are
    assigned (``ChangelogStore.owned`` lists the users of the assigned partitions)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store, self.assigned = store, False

    def owned(self) -> list[tuple[int | None, str]]:
        return list(self.store.owned()) if self.assigned else []

    def get(self, key: str, partition: int | None = None) -> bytes | None:
        return self.store.get(key, partition)


def test_many_refreshes_let_other_tasks_run_while_they_are_sent() -> None:
    w = Worker()
    held = {f"u{n}": "i1" for n in range(3 * SEND_CHUNK)}
    _, ticks = beside_a_ticker(lambda: w.pipeline._refresh(held), lambda: len(w.sent))
    assert len(refreshes(w)) == 3 * SEND_CHUNK
    assert any(0 < t < 3 * SEND_CHUNK for t in ticks)  # it ran while they were being sent


def listed(w: Worker, user: str) -> list[str]:
    """The items of ``user``'s newest for_you list sent."""
    lists = [orjson.loads(v) for t, v in w.sent if t == "recommendations" and v]
    mine = [m for m in lists if m["user_id"] == user and m["feed"] == "for_you"]
    return [it["item_id"] for it in mine[-1]["items"]]


def consume_refreshes(w: Worker, already: int) -> list[dict[str, object]]:
    """The refresh records sent since ``already``, consumed as the user group would."""
    fresh = refreshes(w)[already:]
    for n, body in enumerate(fresh, 1):
        user = str(body["user_id"])
        w.batch(Record("refresh", 0, 100 + already + n, user.encode(), orjson.dumps(body)))
    return fresh


def come_back(w: Worker, item: str, event_id: str) -> None:
    change = w.engine.catalog.set_stock(item, 5)
    assert change is not None and change.came_back
    asyncio.run(w.pipeline.on_stock_change(change, stock(item, 5, event_id, ts=T0 + 50)))


def test_a_restock_gives_the_item_back_to_the_lists_that_lost_it() -> None:
    w = Worker()
    w.batch(click(1, "i1"), click(2, "i2", user="u2"))
    victim = listed(w, "u1")[0]
    assert victim in listed(w, "u2")
    asyncio.run(w.pipeline.stock.ensure())  # built and checked at the start: the next is live
    w.pipeline.stock.update("u3", ["i9"])  # holds something else: loses nothing
    go_out(w, victim, "s-out")
    assert sorted(m["user_id"] for m in consume_refreshes(w, 0)) == ["u1", "u2"]
    assert victim not in listed(w, "u1") and victim not in listed(w, "u2")
    assert w.pipeline.stock.lost_by(victim) == ["u1", "u2"]
    assert w.pipeline.metrics.users_lost._value.get() == 2
    for user in ("u1", "u2"):  # in the stored profile: a restart's rebuild finds it
        assert w.profile(user) is not None and w.profile(user).lost == [victim]
    come_back(w, victim, "s-back")
    back = consume_refreshes(w, 2)
    assert [(m["user_id"], m["event_id"], m["item_id"]) for m in back] == [
        ("u1", "s-back", victim),
        ("u2", "s-back", victim),
    ]  # named after the restock, without an event of the users'
    assert victim in listed(w, "u1") and victim in listed(w, "u2")
    lists = [orjson.loads(v) for t, v in w.sent if t == "recommendations" and v]
    assert lists[-1]["trigger"] == {"event_id": "s-back", "topic": "stock", "ts": T0 + 50}
    assert w.pipeline.stock.lost_by(victim) == [] and w.profile().lost == []
    assert w.pipeline.metrics.users_lost._value.get() == 0


def test_a_deleted_item_restocked_waits_for_its_restore() -> None:
    w = Worker()
    w.batch(click(1, "i1"))
    victim = listed(w, "u1")[0]
    go_out(w, victim, "s-out")
    consume_refreshes(w, 0)
    w.engine.catalog.upsert({"item_id": victim, "title": "gone", "deleted": True})
    come_back(w, victim, "s-back")  # in stock again, but deleted: not shown, nobody refreshed
    assert len(refreshes(w)) == 1
    restored = w.engine.catalog.upsert({"item_id": victim, "title": "back"})
    assert restored is not None
    change = StockChange(w.engine.catalog.index[victim], False, True)  # what ItemFeed reports
    asyncio.run(w.pipeline.on_stock_change(change, {"event_id": "restore", "ts": None}))
    assert [(m["user_id"], m["event_id"]) for m in consume_refreshes(w, 1)] == [("u1", "restore")]
    assert victim in listed(w, "u1")


def test_users_forgotten_or_moved_away_are_not_refreshed_at_the_restock() -> None:
    w = Worker()
    w.batch(click(1, "i1"), click(2, "i1", user="u2"), click(3, "i1", user="u3"))
    victim = listed(w, "u1")[0]
    go_out(w, victim, "s-out")
    consume_refreshes(w, 0)
    w.batch(forget(9, user="u2"))
    assert w.pipeline.stock.lost_by(victim) == ["u1", "u3"]
    w.pipeline.stock.drop("u3")  # (its partition moved to another worker)
    come_back(w, victim, "s-back")
    assert [m["user_id"] for m in refreshes(w)[3:]] == ["u1"]


def test_holders_found_by_the_check_after_a_rebuild_wait_for_the_restock_too() -> None:
    w = Worker()
    w.pipeline.ready.clear()
    stored(w, "u1", ["i3", "i4"])
    go_out(w, "i3", "s-out-3")  # while the worker was down
    w.pipeline.ready.set()
    asyncio.run(w.pipeline.stock.ensure())  # rebuilt, then checked at ready
    assert [m["user_id"] for m in consume_refreshes(w, 0)] == ["u1"]
    come_back(w, "i3", "s-back-3")
    assert [(m["user_id"], m["event_id"]) for m in refreshes(w)[1:]] == [("u1", "s-back-3")]


def lost_to_stock(w: Worker) -> str:
    """u1's list loses its first item to a live stock-out ("s-out"); that item."""
    w.batch(click(1, "i1"))
    victim = listed(w, "u1")[0]
    asyncio.run(w.pipeline.stock.ensure())  # built and checked: the stock-out is live
    go_out(w, victim, "s-out")
    consume_refreshes(w, 0)
    return victim


def ready_now(w: Worker) -> None:
    """The worker becomes ready and runs the check, as the lifecycle does."""

    async def at_ready() -> None:
        w.pipeline.ready.set()
        await w.pipeline.check_held()

    asyncio.run(at_ready())


def test_who_lost_an_item_is_stored_so_a_restart_still_gives_it_back() -> None:
    w = Worker()
    victim = lost_to_stock(w)
    w.restart()  # a new pipeline: its index is rebuilt from the stored profiles (headers)
    come_back(w, victim, "s-back")
    assert [(m["user_id"], m["event_id"]) for m in refreshes(w)[1:]] == [("u1", "s-back")]


def test_a_restock_while_the_worker_was_down_gives_the_item_back_at_ready() -> None:
    w = Worker()
    victim = lost_to_stock(w)
    assert victim not in listed(w, "u1")
    w.restart()
    w.pipeline.ready.clear()  # the replica replays the stock history first
    come_back(w, victim, "s-back")
    assert len(refreshes(w)) == 1  # nobody acted on it then
    asyncio.run(w.pipeline.stock.ensure())  # the rebuild at the assignment, before ready
    ready_now(w)
    assert [(m["user_id"], m["event_id"]) for m in consume_refreshes(w, 1)] == [("u1", "s-back")]
    assert victim in listed(w, "u1") and w.profile().lost == []
    asyncio.run(w.pipeline.check_held())
    assert len(refreshes(w)) == 2  # once per rebuild
