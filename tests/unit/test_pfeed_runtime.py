"""The worker's Pfeed runtime without a broker: load or build, live updates, reload, items."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from stream.adapters import lookup_store
from stream.adapters.encoder import BUNDLED_MODEL_DIR, OnnxItemEncoder
from stream.adapters.item_sync import ItemSync
from stream.adapters.pfeed_runtime import PfeedRuntime
from stream.adapters.qdrant_items_client import ClientItemIndex
from stream.domain.blended import BlendedRelations
from stream.domain.dense import query_vector
from stream.domain.engine import Engine
from stream.domain.lookup import QueryTargetLookup
from stream.domain.profile import UserProfile
from stream.settings import Settings

NOW = 1_700_000_000_000


def item(i: int, deal: bool = False, brand: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "item_id": f"p{i}",
        "ts": NOW,
        "title": f"Thing {i}",
        "attributes": {
            "category": ["Dept", f"Cat {i % 4}"],
            "brand": brand or f"b{i % 3}",
            "price": 1.5 + i,
        },
        "flags": {"deal": deal, "new": False},
        **extra,
    }


@pytest.fixture(scope="module")
def encoder() -> OnnxItemEncoder:
    return OnnxItemEncoder(BUNDLED_MODEL_DIR)


def runtime(
    tmp_path: Path,
    encoder: OnnxItemEncoder,
    messages: list[dict[str, Any]],
    root: Path,
    exact_max: int = Settings().lookup_exact_max,
) -> PfeedRuntime:
    settings = Settings(data_dir=tmp_path, lookup_dir=root, lookup_exact_max=exact_max)
    engine = Engine()
    index = ClientItemIndex(QdrantClient(location=":memory:"), encoder.dim)
    rt = PfeedRuntime(settings, engine, ItemSync(lambda: index), encoder)
    for m in messages:  # what the catalog replica does before the worker serves
        engine.catalog.upsert(m)
        rt.on_item("catalog", m)
    return rt


def opened(rt: PfeedRuntime) -> Any:
    """The Qdrant `items` index, opened by the first flush."""
    assert rt.items is not None and rt.items.index is not None
    return rt.items.index


def rows(rt: PfeedRuntime, item_id: str, role: str = "buy") -> list[str]:
    catalog = rt.engine.catalog
    return [catalog.ids[i] for i in rt.engine.relations.related(catalog.index[item_id], role)[0]]


def test_builds_and_publishes_when_nothing_is_published_then_another_worker_loads_it(
    tmp_path: Path, encoder: OnnxItemEncoder
) -> None:
    root = tmp_path / "shared-lookup"
    msgs = [item(i) for i in range(40)]
    first = runtime(tmp_path / "w1", encoder, msgs, root)
    asyncio.run(first.start())
    assert first.source.startswith("built") and lookup_store.versions(root) == [1]
    assert isinstance(first.engine.relations, BlendedRelations)
    # a second worker whose replica read the catalog in another order ranks from the same rows
    second = runtime(tmp_path / "w2", encoder, list(reversed(msgs)), root)
    asyncio.run(second.start())
    assert second.source.startswith("published") and lookup_store.versions(root) == [1]
    for i in range(40):
        assert rows(first, f"p{i}") == rows(second, f"p{i}")
        assert len(rows(first, f"p{i}")) == 20
    # every catalog item went into the Qdrant `items` collection with its payload
    assert first.items is not None and first.items.count() == 40


def test_the_first_sync_at_start_writes_without_pauses(
    tmp_path: Path, encoder: OnnxItemEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is served while ``start`` runs, so the first full sync of the `items` collection
    is not paced for serving; later flushes are (``WRITE_DUTY``)."""
    from stream.adapters import item_sync

    slept: list[float] = []
    monkeypatch.setattr(item_sync, "CHUNK", 8)
    monkeypatch.setattr(item_sync.time, "sleep", slept.append)
    rt = runtime(tmp_path, encoder, [item(i) for i in range(40)], tmp_path / "lookup")
    asyncio.run(rt.start())
    assert rt.items is not None and rt.items.count() == 40
    assert len(slept) == 4 and not any(slept)
    for i in range(40, 60):
        rt.engine.catalog.upsert(item(i))
        rt.on_item("catalog", item(i))
    asyncio.run(rt.tick())
    assert rt.items.count() == 60 and any(slept[4:])


def test_catalog_messages_refresh_rows_and_qdrant_items(
    tmp_path: Path, encoder: OnnxItemEncoder
) -> None:
    rt = runtime(tmp_path, encoder, [item(i) for i in range(30)], tmp_path / "lookup")
    asyncio.run(rt.start())
    assert rt.items is not None
    new = item(30, brand="b1")
    rt.engine.catalog.upsert(new)
    rt.on_item("catalog", new)
    asyncio.run(rt.tick())
    assert len(rows(rt, "p30")) == 20  # its own rows from content alone
    assert any("p30" in rows(rt, f"p{i}") for i in range(30))  # and it entered others' rows
    full = QueryTargetLookup(
        [f"p{i}" for i in range(31)],
        encoder.embed([item(i, brand="b1" if i == 30 else None) for i in range(31)]),
        k=20,
    ).build()
    for q in range(31):
        expected = [full.ids[t] for t in full.related(q, "view")[0]]
        assert rows(rt, f"p{q}", "view") == expected
    assert rt.live is not None
    target = rt.live.lookup.embeddings[2, rt.engine.catalog.index["p30"]]
    assert opened(rt).search(target, 1) == ["p30"]
    # a deal flip changes the payload, not the embedding; a deletion removes the point
    flip = item(3, deal=True)
    rt.engine.catalog.upsert(flip)
    rt.on_item("catalog", flip)
    asyncio.run(rt.tick())
    assert rt.live.embedded == []
    vec = rt.live.lookup.embeddings[2, rt.engine.catalog.index["p3"]]
    assert opened(rt).search(vec, 5, {"deal": "yes"}) == ["p3"]
    gone = {**item(5), "deleted": True}
    rt.engine.catalog.upsert(gone)
    rt.on_item("catalog", gone)
    asyncio.run(rt.tick())
    assert rt.items.count() == 30
    assert all("p5" not in rows(rt, f"p{i}") for i in range(31) if i != 5)
    # stock: the payload flips at once; the lookup does not change (ranking masks stock)
    before = rows(rt, "p1")
    rt.engine.catalog.set_stock(before[0], 0)
    rt.on_item("stock", {"item_id": before[0], "available": 0})
    asyncio.run(rt.tick())
    assert rows(rt, "p1") == before
    assert before[0] not in opened(rt).search(vec, 40, {"stock": "in"})


def test_a_newly_published_version_is_hot_reloaded(
    tmp_path: Path, encoder: OnnxItemEncoder
) -> None:
    root = tmp_path / "lookup"
    msgs = [item(i) for i in range(30)]
    rt = runtime(tmp_path, encoder, msgs, root)
    asyncio.run(rt.start())
    ids = [m["item_id"] for m in msgs]
    # an offline job publishes a version with other rows (here: k=10 instead of 20)
    lookup_store.publish(QueryTargetLookup(ids, encoder.embed(msgs), k=10).build(), root)
    asyncio.run(rt.tick())
    assert rt.live is not None and rt.live.lookup.k == 10 and len(rows(rt, "p0")) == 10


def test_user_vector_is_the_recency_weighted_mean_of_query_embeddings(
    tmp_path: Path, encoder: OnnxItemEncoder
) -> None:
    rt = runtime(tmp_path, encoder, [item(i) for i in range(10)], tmp_path / "lookup")
    profile = UserProfile("u")
    profile.queries = [["p1", "view", NOW], ["p2", "buy", NOW - 24 * 3600 * 1000]]
    sketch = rt.user_vector(profile, NOW)  # before start: the affinity sketch
    asyncio.run(rt.start())
    assert rt.live is not None
    emb = rt.live.lookup.embeddings
    idx = rt.engine.catalog.index
    mean = emb[0, idx["p1"]] + np.exp(-1.0) * emb[1, idx["p2"]]
    expected = mean / np.linalg.norm(mean)
    got = np.asarray(rt.user_vector(profile, NOW))
    assert np.allclose(got, expected, atol=1e-6) and not np.allclose(got, sketch)
    assert query_vector(UserProfile("x"), idx, emb, NOW) is None


class Flaky:
    """An ItemIndex that fails its first write, like a Qdrant server that is briefly away."""

    dim = 4

    def __init__(self) -> None:
        self.fail = True
        self.points: dict[str, dict[str, Any]] = {}

    def upsert(self, payloads: Any, vectors: np.ndarray) -> None:
        if self.fail:
            self.fail = False
            raise ConnectionError("qdrant away")
        for p in payloads:
            self.points[p["item_id"]] = dict(p)

    def set_stock(self, item_id: str, available: int) -> None:
        self.points[item_id]["stock"] = "in" if available > 0 else "out"

    def delete(self, item_ids: Any) -> None:
        for i in item_ids:
            self.points.pop(i, None)


def test_item_writes_are_kept_newest_per_item_and_retried_after_a_failure() -> None:
    index = Flaky()
    sync = ItemSync(lambda: index)  # type: ignore[arg-type,return-value]
    vec = np.ones(4, dtype=np.float32)
    sync.put(item(1), vec, 5)
    sync.put(item(1, deal=True), vec, 5)  # newest wins
    sync.set_stock("p1", 0)  # folded into the queued payload
    sync.put(item(2), vec, 1)
    sync.delete("p2")
    asyncio.run(sync.flush())
    assert index.points == {} and sync.failures == 1 and sync.pending == 2
    asyncio.run(sync.flush())
    assert set(index.points) == {"p1"} and sync.pending == 0
    assert index.points["p1"]["deal"] == "yes" and index.points["p1"]["stock"] == "out"


def test_a_bulk_item_write_leaves_the_gil_to_the_loop_between_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each chunk's write time is followed by a sleep of 1/WRITE_DUTY - 1 times as long (this
    thread holds the GIL while it builds Edge points); nothing sleeps after the last chunk."""
    from stream.adapters import item_sync

    clock = [0.0]
    slept: list[float] = []

    class Slow:
        calls = 0

        def upsert(self, payloads: Any, vectors: Any) -> None:
            Slow.calls += 1
            clock[0] += 0.01  # each chunk "takes" 10 ms

    monkeypatch.setattr(item_sync.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(item_sync.time, "sleep", slept.append)
    sync = ItemSync(lambda: Slow())  # type: ignore[arg-type,return-value]
    vec = np.ones(4, dtype=np.float32)
    for i in range(2 * item_sync.CHUNK + 1):
        sync.put(item(i), vec, 1)
    asyncio.run(sync.flush())
    assert Slow.calls == 3 and sync.written == 2 * item_sync.CHUNK + 1
    ratio = 1.0 / item_sync.WRITE_DUTY - 1.0
    assert slept == pytest.approx([0.01 * ratio, 0.01 * ratio])
    # a worker's start (nothing served yet) writes at full duty: no pause between chunks
    slept.clear()
    for i in range(2 * item_sync.CHUNK + 1):
        sync.put(item(i), vec, 2)
    asyncio.run(sync.flush(duty=1.0))
    assert Slow.calls == 6 and slept == [0.0, 0.0]


def test_a_large_catalog_is_built_approximately_checked_and_said_so(
    tmp_path: Path, encoder: OnnxItemEncoder
) -> None:
    """Above ``lookup_exact_max`` items a worker's own build goes through inverted lists; the
    ready line says what the check measured, and the rows are the exact build's."""
    words = ("milk", "bread", "apple", "soap", "tea", "rice", "cheese", "pasta", "beans", "jam")
    msgs = [
        item(i, brand=f"brand {i % 37}", title=f"{words[i % 10]} {words[i // 10 % 10]} {i}")
        for i in range(1500)
    ]
    for i, m in enumerate(msgs):
        m["attributes"]["category"] = ["Dept", f"Cat {i % 23}"]
    approximate = runtime(tmp_path / "w1", encoder, msgs, tmp_path / "a", exact_max=0)
    asyncio.run(approximate.start())
    assert "approximate: sampled recall view" in approximate.source
    assert approximate.live is not None and approximate.live.lookup.exact_max == 0  # updates too
    exact = runtime(tmp_path / "w2", encoder, msgs, tmp_path / "e")
    asyncio.run(exact.start())
    assert "approximate" not in exact.source
    same = [rows(approximate, f"p{i}") == rows(exact, f"p{i}") for i in range(0, 1500, 5)]
    assert np.mean(same) > 0.95
