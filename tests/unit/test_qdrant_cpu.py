"""The Qdrant serving copy's CPU is measured where it is spent: points built at the writer's
flush (on the loop, only for lists no newer one replaced), sink calls in its thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import orjson

from stream.adapters.coalescing_writer import CoalescingWriter
from stream.adapters.codec import Decoder
from stream.adapters.metrics import Metrics
from stream.adapters.qdrant_sink import UserPoint
from stream.adapters.state_store import MemoryStore
from stream.adapters.validation import get_validators
from stream.domain.catalog import Catalog
from stream.domain.dense import DIM
from stream.domain.engine import Engine
from stream.domain.ranking import RankingProfile
from stream.pipeline import Pipeline
from stream.plan import Record

T0 = 1_700_000_000_000


class Writer:
    """What the pipeline needs of a CoalescingWriter: submit_lazy (no thread, no sink)."""

    def __init__(self) -> None:
        self.builds: dict[str, Callable[[], UserPoint]] = {}

    def submit_lazy(self, user_id: str, build: Callable[[], UserPoint]) -> None:
        self.builds[user_id] = build


class NoSink:
    dim = DIM

    def upsert(self, points: Sequence[UserPoint]) -> None:
        pass

    def delete(self, user_ids: Sequence[str]) -> None:
        pass


def _pipeline(writer: Writer | None, metrics: Metrics) -> Pipeline:
    catalog = Catalog()
    for i in range(10):
        catalog.upsert({"item_id": f"i{i}", "title": f"Item {i}"})

    async def send(topic: str, key: bytes, value: bytes | None, p: int | None) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def caught_up() -> bool:
        return True

    pipeline = Pipeline(
        Engine(catalog=catalog, ranking=RankingProfile()),
        Decoder(get_validators(), 64 * 1024),
        MemoryStore(),
        send,
        writer,  # type: ignore[arg-type]
        metrics,
        caught_up,
    )
    pipeline.ready.set()
    return pipeline


def _clicks(n: int) -> list[Record]:
    out = []
    for k in range(n):
        user = f"u{k}"
        body = {"event_id": f"c{k}", "user_id": user, "item_id": f"i{k % 10}", "ts": T0 + k}
        out.append(Record("clicks", 0, k, user.encode(), orjson.dumps(body)))
    return out


def _build_cpu(metrics: Metrics) -> float:
    return metrics.qdrant_cpu.labels("build")._value.get()  # type: ignore[no-any-return]


def test_the_pipeline_submits_points_unbuilt_and_the_flush_counts_their_build() -> None:
    metrics, writer = Metrics(), Writer()
    asyncio.run(_pipeline(writer, metrics).handle_user_batch(_clicks(50)))
    assert len(writer.builds) == 50 and _build_cpu(metrics) == 0  # nothing built yet
    point = writer.builds["u7"]()
    assert point.user_id == "u7" and len(point.vector) == DIM and point.payload["item_ids"]

    async def flush() -> None:
        qdrant = CoalescingWriter(
            NoSink(), flush_ms=1, on_build_cpu=partial(metrics.on_qdrant_cpu, part="build")
        )
        await qdrant.start()
        for user_id, build in writer.builds.items():
            qdrant.submit_lazy(user_id, build)
        assert await qdrant.wait_idle(30.0)
        await qdrant.stop()
        assert qdrant.stats.points_written == 50

    asyncio.run(flush())
    assert _build_cpu(metrics) > 0


def test_no_writer_no_qdrant_cpu() -> None:
    metrics = Metrics()
    asyncio.run(_pipeline(None, metrics).handle_user_batch(_clicks(5)))
    assert _build_cpu(metrics) == 0
