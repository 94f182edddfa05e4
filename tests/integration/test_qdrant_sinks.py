"""Qdrant `users` sinks (Edge shard and qdrant-client) and the coalescing writer. No broker."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient

from stream.adapters.coalescing_writer import CoalescingWriter
from stream.adapters.qdrant_client_sink import ClientUserSink
from stream.adapters.qdrant_edge_sink import EdgeUserSink
from stream.adapters.qdrant_sink import (
    RejectedPoints,
    UserPoint,
    UserSink,
    make_user_sink,
    point_id,
)

DIM = 8


def _vec(seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(x) for x in rng.normal(size=DIM)]


def _point(user: str, items: Sequence[str], seed: int = 0) -> UserPoint:
    ranked = [
        {"item_id": i, "score": 1.0 / (r + 1), "reasons": ["test"]} for r, i in enumerate(items)
    ]
    return UserPoint(user, _vec(seed), {"feed": "for_you", "items": ranked, "version": seed})


@pytest.fixture(params=["edge", "edge-structured", "client"])
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "edge":
        s: Any = EdgeUserSink(tmp_path / "users", dim=DIM)
    elif request.param == "edge-structured":
        s = EdgeUserSink(tmp_path / "users", dim=DIM, payload_json=False)
    else:
        s = ClientUserSink(QdrantClient(":memory:"), "users", dim=DIM, owns_client=True)
    yield s
    s.close()


def test_point_id_is_deterministic_uuid() -> None:
    assert point_id("u1") == point_id("u1") != point_id("u2")
    assert uuid.UUID(point_id("u1")).version == 5


def test_sinks_satisfy_protocol(sink: Any) -> None:
    assert isinstance(sink, UserSink)


def test_upsert_get_latest_and_delete(sink: Any) -> None:
    assert sink.get("alice") is None
    sink.upsert([_point("alice", ["a", "b"], 1), _point("bob", ["c"], 2)])
    got = sink.get("alice")
    assert got is not None
    assert got["user_id"] == "alice"
    assert [i["item_id"] for i in got["items"]] == ["a", "b"]
    assert got["item_ids"] == ["a", "b"]
    # Repeated upserts of the same user keep only the latest list (one point per user).
    sink.upsert([_point("alice", ["x"], 3)])
    sink.upsert([_point("alice", ["y", "z"], 4)])
    got = sink.get("alice")
    assert got is not None and got["item_ids"] == ["y", "z"] and got["version"] == 4
    assert sink.count() == 2
    sink.delete(["alice"])
    assert sink.get("alice") is None
    assert sink.count() == 1
    sink.delete(["nobody"])  # deleting a missing user is not an error
    assert sink.count() == 1


def test_numpy_vectors_and_dimension_check(sink: Any) -> None:
    sink.upsert([UserPoint("np", np.ones(DIM, dtype=np.float32), {"items": []})])
    assert sink.get("np") == {"items": [], "user_id": "np", "item_ids": []}
    with pytest.raises(ValueError, match="dimensions"):
        sink.upsert([UserPoint("bad", [1.0] * (DIM + 1), {})])


def test_unstorable_points_are_rejected_and_the_rest_written(sink: Any) -> None:
    bad_vec = UserPoint("nan", [float("nan")] * DIM, {"items": []})
    bad_payload = UserPoint("set", _vec(1), {"items": [], "tags": {"a", "b"}})
    with pytest.raises(RejectedPoints) as info:
        sink.upsert([_point("ok1", ["a"]), bad_vec, bad_payload, _point("ok2", ["b"])])
    assert sorted(info.value.errors) == ["nan", "set"]
    assert sink.count() == 2 and sink.get("ok2") is not None and sink.get("set") is None


def test_users_holding(sink: Any) -> None:
    sink.upsert(
        [
            _point("u1", ["shoe", "hat"]),
            _point("u2", ["hat"]),
            _point("u3", ["sock"]),
            UserPoint("u4", _vec(4), {"feeds": {"deals_for_you": {"items": [{"item_id": "hat"}]}}}),
        ]
    )
    assert sorted(sink.users_holding("hat")) == ["u1", "u2", "u4"]
    assert sink.users_holding("shoe") == ["u1"]
    assert sink.users_holding("nothing") == []
    assert len(sink.users_holding("hat", limit=2)) == 2
    sink.upsert([_point("u2", ["sock"])])  # u2's new list no longer holds the hat
    assert sorted(sink.users_holding("hat")) == ["u1", "u4"]


def test_users_holding_pages_past_one_scroll_page(sink: Any) -> None:
    sink.upsert([_point(f"p{i}", ["common", f"own{i}"], i) for i in range(1500)])
    holders = sink.users_holding("common")
    assert len(holders) == 1500 and len(set(holders)) == 1500


#: ids a tokenizer could split, fold, stem or match in part: each must match only itself
LOOKALIKES = ["hat", "Hat", "HAT", "hats", "ha", "hat s", "s", "hät", "hat-1", "1", "x" * 300, "x"]


def test_users_holding_is_exact_for_lookalike_ids(sink: Any) -> None:
    sink.upsert([_point(f"u{k}", [item, "common"], k) for k, item in enumerate(LOOKALIKES)])
    for k, item in enumerate(LOOKALIKES):
        assert sink.users_holding(item) == [f"u{k}"], item
    assert sink.users_holding("hat s x") == [] and sink.users_holding("") == []
    assert len(sink.users_holding("common")) == len(LOOKALIKES)


def _edge_holders(sink: EdgeUserSink, item_id: str) -> list[str]:
    """Users found by a vector search under the sink's holding filter (the serving-side use)."""
    found = sink._shard.query(
        qe.QueryRequest(
            query=qe.Query.Nearest(_vec(0)),
            limit=100,
            with_payload=["user_id"],
            filter=sink.holding_filter(item_id),
        )
    )
    return sorted(str((p.payload or {}).get("user_id")) for p in found)


@pytest.mark.parametrize("json_mode", [True, False])
def test_edge_points_hold_no_id_lists_and_filter_searches(tmp_path: Path, json_mode: bool) -> None:
    """Each string leaf of a payload list costs ~8 µs to convert (GIL held): json points keep
    scalars only, and the holding filter works in searches, before and after optimize()."""
    sink = EdgeUserSink(tmp_path / "users", dim=DIM, payload_json=json_mode)
    try:
        sink.upsert([_point(f"u{k}", [f"i{k}", f"i{k + 1}", "Hat"], k) for k in range(20)])
        for _ in range(2):
            raw = sink._shard.retrieve([point_id("u3")], True, False)[0].payload or {}
            lists = sorted(k for k, v in raw.items() if isinstance(v, list))
            assert lists == ([] if json_mode else ["item_ids", "items"])
            assert _edge_holders(sink, "i4") == ["u3", "u4"]
            assert _edge_holders(sink, "hat") == [] and len(_edge_holders(sink, "Hat")) == 20
            sink._shard.optimize()
    finally:
        sink.close()


def test_client_holding_filter_in_a_search() -> None:
    sink = ClientUserSink(QdrantClient(":memory:"), "users", dim=DIM, owns_client=True)
    try:
        sink.upsert([_point(f"u{k}", [f"i{k}", f"i{k + 1}"], k) for k in range(10)])
        found = sink.client.query_points(
            "users", query=_vec(0), limit=100, query_filter=sink.holding_filter("i4")
        ).points
        assert sorted(str((p.payload or {})["user_id"]) for p in found) == ["u3", "u4"]
    finally:
        sink.close()


def _write_pre_item_keys_shard(path: Path) -> None:
    """A shard as the sink wrote it before `item_keys`: keyword indexes on user_id and item_ids,
    payload {user_id, item_ids: [...], doc_json} with the ranked list (no item_ids) in doc_json."""
    config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine))
    path.mkdir(parents=True)
    shard = qe.EdgeShard.create(str(path), config)
    for name in ("user_id", "item_ids"):
        shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
    old = {"old1": ["hat", "shoe"], "old2": ["sock"]}
    doc = {"feed": "for_you", "items": [], "version": 1}
    points = [
        qe.Point(
            point_id(u),
            _vec(1),
            {"user_id": u, "item_ids": ids, "doc_json": orjson.dumps(doc).decode()},
        )
        for u, ids in old.items()
    ]
    shard.update(qe.UpdateOperation.upsert_points(points))
    shard.flush()
    shard.close()


def test_edge_loads_a_shard_written_before_item_keys(tmp_path: Path) -> None:
    path = tmp_path / "users"
    _write_pre_item_keys_shard(path)
    sink = EdgeUserSink(path, dim=DIM)
    try:
        got = sink.get("old1")
        assert got is not None and got["item_ids"] == ["hat", "shoe"] and got["version"] == 1
        sink.upsert([_point("new1", ["hat"], 2), _point("old2", ["hat"], 3)])  # old2 rewritten
        assert sorted(sink.users_holding("hat")) == ["new1", "old1", "old2"]
        assert sink.users_holding("sock") == [] and sink.users_holding("shoe") == ["old1"]
        assert _edge_holders(sink, "hat") == ["new1", "old1", "old2"]
    finally:
        sink.close()


def test_edge_shard_persists_across_close_and_load(tmp_path: Path) -> None:
    path = tmp_path / "qdrant-edge" / "users"
    s1 = EdgeUserSink(path, dim=DIM)
    s1.upsert([_point("carol", ["k1", "k2"], 7), _point("dave", ["k3"], 8)])
    s1.delete(["dave"])
    s1.close()
    s1.close()  # idempotent
    s2 = EdgeUserSink(path, dim=DIM)  # loads the existing shard
    try:
        got = s2.get("carol")
        assert got is not None and got["item_ids"] == ["k1", "k2"] and got["version"] == 7
        assert s2.get("dave") is None
        assert s2.count() == 1
        assert s2.users_holding("k2") == ["carol"]  # index survived the reload
    finally:
        s2.close()
    with pytest.raises(Exception, match="size"):
        EdgeUserSink(path, dim=DIM * 2)


def test_make_user_sink_defaults_to_edge_under_data_dir(tmp_path: Path) -> None:
    s = make_user_sink(None, None, tmp_path, dim=DIM)
    try:
        assert isinstance(s, EdgeUserSink)
        assert s.path == tmp_path / "qdrant-edge" / "users"
    finally:
        s.close()


# ------------------------------------------------------------------------------------------
# CoalescingWriter
# ------------------------------------------------------------------------------------------


class RecordingSink:
    """Wraps a real sink, records each write, and fails the first `fail` upserts."""

    def __init__(self, inner: Any, fail: int = 0) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.fail = fail
        self.upsert_calls: list[int] = []
        self.delete_calls: list[int] = []
        self.threads: set[int] = set()

    def upsert(self, points: Sequence[UserPoint]) -> None:
        self.threads.add(threading.get_ident())
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionError("qdrant unavailable (injected)")
        self.upsert_calls.append(len(points))
        self.inner.upsert(points)

    def delete(self, user_ids: Sequence[str]) -> None:
        self.delete_calls.append(len(user_ids))
        self.inner.delete(user_ids)

    def get(self, user_id: str) -> dict[str, Any] | None:
        return self.inner.get(user_id)

    def count(self) -> int:
        return int(self.inner.count())

    def close(self) -> None:
        self.inner.close()


def test_writer_coalesces_bursts_to_latest(sink: Any) -> None:
    rec = RecordingSink(sink)
    flushes: list[tuple[int, float]] = []

    async def main() -> None:
        writer = CoalescingWriter(
            rec, flush_ms=20, on_flush=lambda n, lag: flushes.append((n, lag))
        )
        await writer.start()
        started = time.monotonic()
        for k in range(1000):
            writer.submit(_point(f"u{k % 10}", [f"item{k}"], seed=k))
        assert writer.pending == 10
        assert await writer.wait_idle(30.0)  # returns once idle: 30 s is for a stuck writer
        elapsed = time.monotonic() - started
        await writer.stop()
        st = writer.stats
        assert st.submitted == 1000 and st.coalesced == 990
        assert st.points_written == 10 and st.pending == 0 and st.errors == 0
        # lag is seconds from a submit to its write, so never more than the whole run took (a
        # fixed 2 s bound held ~10x margin on a quiet machine, not on a starved one)
        assert 0 < st.last_lag_seconds <= st.max_lag_seconds <= elapsed
        assert main_thread not in rec.threads  # sink ran off the event loop

    main_thread = threading.get_ident()
    asyncio.run(main())
    assert 1 <= len(rec.upsert_calls) <= 3, rec.upsert_calls
    assert sum(n for n, _ in flushes) == 10
    for u in range(10):
        last_k = 990 + u  # last submit for user u{u}
        got = sink.get(f"u{u}")
        assert got is not None and got["item_ids"] == [f"item{last_k}"] and got["version"] == last_k
    assert sink.count() == 10


def test_writer_flushes_full_batches_early_and_deletes(sink: Any) -> None:
    rec = RecordingSink(sink)

    async def main() -> None:
        # A long window: only max_batch (or stop) can trigger the writes below.
        writer = CoalescingWriter(rec, flush_ms=60_000, max_batch=50)
        await writer.start()
        for k in range(120):
            writer.submit(_point(f"b{k}", ["x"], k))
        for _ in range(500):  # two full batches go out at once, without the 60 s window
            if len(rec.upsert_calls) >= 2:
                break
            await asyncio.sleep(0.01)
        assert rec.upsert_calls == [50, 50]
        writer.submit_delete("b0")
        writer.submit(_point("b119", ["newest"], 999))
        writer.submit_delete("b118")
        await writer.stop()  # flushes the remainder despite the long window
        assert writer.pending == 0
        with pytest.raises(RuntimeError):
            writer.submit(_point("late", ["x"]))

    asyncio.run(main())
    assert sink.get("b0") is None and sink.get("b118") is None
    got = sink.get("b119")
    assert got is not None and got["item_ids"] == ["newest"]
    assert sink.count() == 118


def test_writer_survives_failing_sink_without_losing_points(sink: Any) -> None:
    rec = RecordingSink(sink, fail=2)

    async def main() -> None:
        writer = CoalescingWriter(rec, flush_ms=2, retry_backoff_s=0.02)
        await writer.start()
        for k in range(30):
            writer.submit(_point(f"f{k}", [f"v1-{k}"], k))
        await asyncio.sleep(0.01)  # first flush fails; newer versions arrive meanwhile
        for k in range(0, 30, 3):
            writer.submit(_point(f"f{k}", [f"v2-{k}"], 100 + k))
        assert await writer.wait_idle(30.0)
        await writer.stop()
        st = writer.stats
        assert st.errors == 2 and st.last_error is not None and "injected" in st.last_error
        assert st.points_written == 30 and st.pending == 0

    asyncio.run(main())
    assert sink.count() == 30
    for k in range(30):
        got = sink.get(f"f{k}")
        expect = f"v2-{k}" if k % 3 == 0 else f"v1-{k}"
        assert got is not None and got["item_ids"] == [expect]


class CpuSink(RecordingSink):
    """Burns ``burn_s`` of CPU, then sleeps ``sleep_s``, in every upsert (the first ``fail``
    of them then raise)."""

    def __init__(self, inner: Any, burn_s: float, sleep_s: float, fail: int = 0) -> None:
        super().__init__(inner, fail=0)
        self.burn_s, self.sleep_s, self.fail_cpu = burn_s, sleep_s, fail

    def upsert(self, points: Sequence[UserPoint]) -> None:
        started = time.thread_time()
        while time.thread_time() - started < self.burn_s:
            pass
        time.sleep(self.sleep_s)
        if self.fail_cpu > 0:
            self.fail_cpu -= 1
            raise ConnectionError("qdrant unavailable (injected)")
        super().upsert(points)


def test_writer_counts_its_threads_cpu_not_its_waits(sink: Any) -> None:
    def run(rec: CpuSink, rounds: int) -> tuple[float, list[float]]:
        reported: list[float] = []

        async def main() -> float:
            writer = CoalescingWriter(
                rec, flush_ms=1, retry_backoff_s=0.001, on_cpu=reported.append
            )
            await writer.start()
            for k in range(rounds):
                writer.submit(_point(f"c{k}", ["x"], k))
                assert await writer.wait_idle(30.0)
            await writer.stop()
            return writer.stats.cpu_seconds

        return asyncio.run(main()), reported

    # 3 calls (one failing, its CPU counted too) x 30 ms of CPU each
    cpu, reported = run(CpuSink(sink, burn_s=0.03, sleep_s=0.0, fail=1), rounds=2)
    assert cpu >= 0.085 and sum(reported) == pytest.approx(cpu)
    assert len(reported) == 3
    # 2 calls x 100 ms asleep: wall time, not CPU
    cpu, reported = run(CpuSink(sink, burn_s=0.0, sleep_s=0.1), rounds=2)
    assert cpu < 0.05 and sum(reported) == pytest.approx(cpu)


def test_writer_drops_rejected_points_loudly_and_keeps_going(sink: Any) -> None:
    async def main() -> None:
        writer = CoalescingWriter(sink, flush_ms=1)
        await writer.start()
        writer.submit(UserPoint("poison", _vec(0), {"items": [], "x": {1, 2}}))
        for k in range(5):
            writer.submit(_point(f"g{k}", ["a"], k))
        assert await writer.wait_idle(30.0)
        await writer.stop()
        st = writer.stats
        assert st.rejected == 1 and st.points_written == 5 and st.errors == 0

    asyncio.run(main())
    assert sink.count() == 5 and sink.get("poison") is None


def test_writer_rejects_wrong_dimension_at_submit(sink: Any) -> None:
    async def main() -> None:
        writer = CoalescingWriter(sink)
        with pytest.raises(ValueError):
            writer.submit(UserPoint("x", [0.0] * (DIM - 1), {}))
        assert writer.pending == 0
        await writer.stop()

    asyncio.run(main())


def test_writer_stop_gives_up_after_timeout_on_dead_sink(sink: Any) -> None:
    rec = RecordingSink(sink, fail=10**9)

    async def main() -> None:
        writer = CoalescingWriter(rec, flush_ms=1, retry_backoff_s=0.01, max_backoff_s=0.02)
        await writer.start()
        writer.submit(_point("stuck", ["x"]))
        await writer.stop(timeout=0.3)
        assert writer.pending == 1  # reported, not silently dropped
        assert writer.stats.errors >= 3

    asyncio.run(main())
    assert sink.get("stuck") is None
