"""Catalog updates computed in a thread: a user batch never waits for one, and the rows in
use are swapped only once the update is whole (nor across a hot reload)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream.adapters import lookup_store
from stream.adapters.encoder import BUNDLED_MODEL_DIR, OnnxItemEncoder
from stream.adapters.pfeed_runtime import PfeedRuntime
from stream.domain import lookup_patch
from stream.domain.lookup import QueryTargetLookup
from tests.unit.test_pfeed_runtime import item, rows, runtime


class Gated(OnnxItemEncoder):
    """The bundled encoder, whose ``embed`` waits for the test to open the gate (or fails)."""

    def __init__(self) -> None:
        super().__init__(BUNDLED_MODEL_DIR)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = False
        self.hold_s = 0.0

    def embed(self, messages: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        self.entered.set()
        time.sleep(self.hold_s)
        if not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        if self.fail:
            raise RuntimeError("encoder broke")
        return super().embed(messages, *args, **kwargs)


@pytest.fixture()
def encoder() -> Gated:
    return Gated()


def started(tmp_path: Path, encoder: Gated, n: int = 30) -> PfeedRuntime:
    """A runtime whose lookup of ``n`` items was built and published at its start."""
    rt = runtime(tmp_path, encoder, [item(i) for i in range(n)], tmp_path / "lookup")
    asyncio.run(rt.start())
    return rt


def arrive(rt: Any, message: dict[str, Any]) -> None:
    """What the catalog replica does with a `catalog` message."""
    rt.engine.catalog.upsert(message)
    rt.on_item("catalog", message)


async def until(flag: threading.Event) -> None:
    for _ in range(3000):
        if flag.is_set():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError


def test_a_user_batch_ranks_from_the_rows_in_use_while_an_update_computes(
    tmp_path: Path, encoder: Gated
) -> None:
    rt = started(tmp_path, encoder)
    assert rt.live is not None
    before = rt.live.lookup
    held = {i: rows(rt, f"p{i}", "view") for i in range(30)}

    async def scenario() -> None:
        encoder.gate.clear()
        encoder.entered.clear()
        arrive(rt, item(30, brand="b1"))
        rt.sync()  # what a user batch calls before ranking: starts the update, returns
        await until(encoder.entered)
        for _ in range(3):  # more user batches while the thread is held
            rt.sync()
            assert rt.pending_items == 1  # (the `recstream_lookup_pending_items` gauge)
            assert rt.live is not None and rt.live.lookup is before
            assert rows(rt, "p30") == [] and rows(rt, "p3", "view") == held[3]
        encoder.gate.set()
        await rt.settle()

    asyncio.run(scenario())
    assert rt.pending_items == 0 and rt.last_update_seconds > 0
    assert rt.live.lookup is not before and len(rows(rt, "p30")) == 20
    assert [rows(rt, f"p{i}", "view") for i in range(30)] != list(held.values())
    assert len(before) == 30 and "p30" not in before.index  # the copy took the update
    full = QueryTargetLookup(
        [f"p{i}" for i in range(31)],
        OnnxItemEncoder(BUNDLED_MODEL_DIR).embed(
            [item(i, brand="b1" if i == 30 else None) for i in range(31)]
        ),
        k=20,
    ).build()
    for q in range(31):
        assert rows(rt, f"p{q}", "view") == [full.ids[t] for t in full.related(q, "view")[0]]


def test_a_hot_reload_waits_for_the_update_in_flight(tmp_path: Path, encoder: Gated) -> None:
    rt = started(tmp_path, encoder)
    msgs = [item(i) for i in range(30)]  # (an offline job publishes a version with k=10)
    other = QueryTargetLookup([m["item_id"] for m in msgs], encoder.embed(msgs), k=10)
    lookup_store.publish(other.build(), tmp_path / "lookup")

    async def scenario() -> None:
        encoder.gate.clear()
        encoder.entered.clear()
        arrive(rt, item(30))
        rt.sync()
        await until(encoder.entered)
        rt._last_poll = 0.0  # the next tick polls the pointer
        reload = asyncio.ensure_future(rt._reload())
        await asyncio.sleep(0.2)
        assert not reload.done()  # the new version waits for the update to go in first
        encoder.gate.set()
        await reload
        await rt.settle()

    asyncio.run(scenario())
    assert rt.live is not None and rt.live.lookup.k == 10
    assert len(rows(rt, "p30")) == 10  # re-embedded from its remembered content
    assert len(rows(rt, "p0")) == 10


def test_an_update_that_fails_in_the_thread_fails_the_next_batch_loudly(
    tmp_path: Path, encoder: Gated
) -> None:
    rt = started(tmp_path, encoder, 20)
    encoder.fail = True
    arrive(rt, item(20))

    async def scenario() -> None:
        rt.sync()
        await asyncio.sleep(0.5)
        rt.sync()

    with pytest.raises(RuntimeError, match="encoder broke"):
        asyncio.run(scenario())


def test_a_few_messages_wait_for_the_gap_or_the_tick_and_a_full_batch_does_not(
    tmp_path: Path, encoder: Gated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each update copies the lookup and makes the blend re-make its rows: a trickle of
    catalog messages is gathered for ``UPDATE_GAP_S`` after the last start, not one update
    per user batch; ``APPLY_BATCH`` waiting messages start one at once."""
    from stream.adapters import pfeed_runtime

    rt = started(tmp_path, encoder)
    monkeypatch.setattr(pfeed_runtime, "UPDATE_GAP_S", 3600.0)
    monkeypatch.setattr(pfeed_runtime, "APPLY_BATCH", 2)
    monkeypatch.setattr(pfeed_runtime, "UPDATE_DUTY", 1e9)  # (no rest: the next test's)

    async def scenario() -> None:
        arrive(rt, item(30))
        rt.sync()  # nothing started yet: starts at once
        await rt.settle()
        assert len(rows(rt, "p30")) == 20
        arrive(rt, item(31))
        rt.sync()  # started moments ago: p31 waits
        assert rt.updating and rows(rt, "p31") == []
        arrive(rt, item(32))
        rt.sync()  # a full batch waiting: goes now
        assert rt._job is not None
        await rt.settle()
        assert len(rows(rt, "p31")) == 20 and len(rows(rt, "p32")) == 20
        arrive(rt, item(33))
        rt.sync()
        assert rows(rt, "p33") == []
        await rt.tick()  # the tick does not wait for the gap
        assert len(rows(rt, "p33")) == 20 and not rt.updating

    asyncio.run(scenario())


def test_a_start_embeds_what_the_published_version_lacks_off_the_loop(
    tmp_path: Path, encoder: Gated
) -> None:
    """A restart whose published version lacks items embeds them before it serves, in a
    thread: the loop (the consumer's heartbeats) goes on meanwhile."""
    root = tmp_path / "lookup"
    msgs = [item(i) for i in range(31)]
    lookup_store.publish(
        QueryTargetLookup([m["item_id"] for m in msgs[:30]], encoder.embed(msgs[:30])).build(),
        root,
    )
    rt = runtime(tmp_path, encoder, msgs, root)

    async def scenario() -> None:
        encoder.gate.clear()
        encoder.entered.clear()
        start = asyncio.ensure_future(rt.start())
        await until(encoder.entered)  # (on the loop: a blocked loop would never get here)
        await asyncio.sleep(0.05)
        assert not start.done()
        encoder.gate.set()
        await start

    asyncio.run(scenario())
    assert rt.source.startswith("published") and len(rows(rt, "p30")) == 20


def test_after_an_update_the_thread_rests_before_the_next_even_for_a_full_batch(
    tmp_path: Path, encoder: Gated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update that computed s seconds is followed by no other for s / UPDATE_DUTY after
    it started (a storm leaves the worker its core); the tick waits the rest out."""
    from stream.adapters import pfeed_runtime

    rt = started(tmp_path, encoder)
    monkeypatch.setattr(pfeed_runtime, "APPLY_BATCH", 2)
    monkeypatch.setattr(pfeed_runtime, "UPDATE_DUTY", 0.05)  # rest: 20 × the update
    encoder.hold_s = 0.05  # the update computes ≥ 50 ms: ≥ 1 s of rest from its start
    # (staged, though an update of a 30-item lookup rewrites most of its rows)
    monkeypatch.setattr(lookup_patch, "COPY_SHARE", 10.0)

    async def scenario() -> None:
        arrive(rt, item(30))
        rt.sync()
        await rt.settle()
        assert len(rows(rt, "p30")) == 20
        assert rt.live is not None
        roomy = rt.live.lookup  # (the first new item's copy, with room for more)
        arrive(rt, item(31))
        arrive(rt, item(32))
        rt.sync()  # a full batch, but the thread rests
        assert rt._job is None and rows(rt, "p31") == []
        await rt.settle()  # waits the rest out, then applies
        assert len(rows(rt, "p31")) == 20 and len(rows(rt, "p32")) == 20
        assert rt.live.lookup is roomy  # staged: its rows written into the lookup in use
        arrive(rt, item(33))
        arrive(rt, item(34))
        rt.sync()
        assert rt._job is None  # resting again
        rt.rested()  # (what the churn bench does before each run)
        rt.sync()
        assert rt._job is not None
        await rt.settle()

    asyncio.run(scenario())


def test_a_start_takes_a_flag_flip_that_arrived_while_it_loaded(
    tmp_path: Path, encoder: Gated
) -> None:
    """A batch with nothing to embed (a deal flag flip of an item the published version
    holds) still goes through the start's catch-up."""
    first = started(tmp_path / "w1", encoder)  # publishes the version the second one loads
    assert first.live is not None
    rt = runtime(tmp_path / "w2", encoder, [item(i) for i in range(30)], tmp_path / "w1/lookup")
    initial = rt._initial

    def loading(*args: Any) -> Any:
        out = initial(*args)
        rt.on_item("catalog", item(3, deal=True))  # (the replica, while the version loads)
        return out

    rt._initial = loading  # type: ignore[method-assign]
    asyncio.run(rt.start())
    assert rt.source.startswith("published") and not rt.updating
    assert len(rows(rt, "p3")) == 20
