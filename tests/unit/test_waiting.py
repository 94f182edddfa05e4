"""Who lost an item to a stock-out, kept until it comes back (``stream.domain.waiting``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.app import create_app
from stream.domain.waiting import Waiting
from stream.settings import Settings


def test_users_wait_per_item_once_each_until_it_comes_back() -> None:
    waiting = Waiting()
    waiting.add("i1", ["u1", "u2"])
    waiting.add("i1", ["u2", "u3"])  # a second stock-out check: no user counted twice
    waiting.add("i2", ["u1"])
    waiting.add("i3", [])  # nobody held it: nothing kept
    assert len(waiting) == 4 and set(waiting.by_item) == {"i1", "i2"}
    assert waiting.pop("i1") == {"u1", "u2", "u3"}
    assert waiting.pop("i1") == set()  # came back once: nobody waits any more
    assert len(waiting) == 1 and waiting.pop("i9") == set()


def test_past_the_bound_the_items_out_longest_are_forgotten_first() -> None:
    waiting = Waiting(max_entries=3)
    waiting.add("old", ["u1", "u2"])
    waiting.add("mid", ["u3"])
    waiting.add("old", ["u4"])  # a later stock-out of the same item keeps its place
    assert list(waiting.by_item) == ["mid"] and len(waiting) == 1
    assert waiting.forgotten == 3
    waiting.add("new", ["u5", "u6"])
    assert set(waiting.by_item) == {"mid", "new"} and len(waiting) == 3
    none = Waiting(max_entries=0)  # the restock refresh switched off
    none.add("i1", ["u1"])
    assert len(none) == 0 and none.forgotten == 1
    with pytest.raises(ValueError, match="at least 0"):
        Waiting(max_entries=-1)


def test_a_forgotten_user_waits_for_nothing() -> None:
    waiting = Waiting()
    waiting.add("i1", ["u1", "u2"])
    waiting.add("i2", ["u1"])
    waiting.drop("u1")
    assert waiting.by_item == {"i1": {"u2"}} and len(waiting) == 1
    waiting.drop("u9")
    assert len(waiting) == 1


def test_the_bound_comes_from_the_environment_and_reaches_the_worker(tmp_path: Path) -> None:
    assert Settings.from_env({}).restock_waiting_max == 1_000_000
    env = {"RECSTREAM_RESTOCK_WAITING_MAX": "0"}
    assert Settings.from_env(env).restock_waiting_max == 0
    with pytest.raises(ValueError, match="RECSTREAM_RESTOCK_WAITING_MAX"):
        Settings.from_env({"RECSTREAM_RESTOCK_WAITING_MAX": "-1"})
    with pytest.raises(ValueError, match="RECSTREAM_RESTOCK_WAITING_MAX"):
        Settings.from_env({"RECSTREAM_RESTOCK_WAITING_MAX": "many"})
    env |= {"RECSTREAM_RESTOCK_WAITING_MAX": "7", "RECSTREAM_DATA_DIR": str(tmp_path)}
    app = create_app(Settings.from_env(env | {"RECSTREAM_PFEED": "0"}))  # (not started)
    try:
        assert app.pipeline.stock.waiting.max_entries == 7
    finally:
        app.store.close()
        app.sink.close()
