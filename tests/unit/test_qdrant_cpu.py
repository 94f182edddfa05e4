"""The Qdrant serving copy's CPU is measured where it is spent: points built on the loop."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from stream.adapters.codec import Decoder
from stream.adapters.metrics import Metrics
from stream.adapters.qdrant_sink import UserPoint
from stream.adapters.state_store import MemoryStore
from stream.adapters.validation import get_validators
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.ranking import RankingProfile
from stream.pipeline import Pipeline
from stream.plan import Record

T0 = 1_700_000_000_000


class Writer:
    """What the pipeline needs of a CoalescingWriter: submit (no thread, no sink)."""

    def __init__(self) -> None:
        self.points: list[UserPoint] = []

    def submit(self, point: UserPoint) -> None:
        self.points.append(point)


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


def test_building_points_is_counted_as_qdrant_cpu() -> None:
    metrics, writer = Metrics(), Writer()
    asyncio.run(_pipeline(writer, metrics).handle_user_batch(_clicks(50)))
    assert len(writer.points) == 50
    assert _build_cpu(metrics) > 0


def test_no_writer_no_qdrant_cpu() -> None:
    metrics = Metrics()
    asyncio.run(_pipeline(None, metrics).handle_user_batch(_clicks(5)))
    assert _build_cpu(metrics) == 0
