"""The worker's Kafka path with no engine, relaying each event to an answer (the report's
``faust_floor``, named when that path was a Faust agent's).

The path is the worker's user reader (``Settings.user_consumer``): by default the bare
consumer group (``user_group.UserGroup``, the worker's class and settings) inside the same
Faust app a worker runs; with ``RECSTREAM_USER_CONSUMER=faust``, the Faust agent below.

The bare relay (``stream.bench.relay``) is the broker's floor: one aiokafka consumer, one
producer. A worker adds Faust on the way in: its consumer thread, the agent's stream, the
batch feeder, acks and offset commits. This process is that path and nothing else — a Faust
app configured like the worker (``faust_config``: the same fetch wait, event-time scheduler
and bundled-broker settings), one agent over the same topics, batched by the worker's
``BatchFeeder`` with the worker's settings, each batch answered through an output producer
like the worker's and acknowledged once delivered. Its latency at the bench's loads is the
floor any Faust worker of this design has, before ranking a single list; its CPU per event is
what the Faust path costs at that rate. Writes ``<ready>`` once its partitions are assigned.
Usage (worker environment)::

    python -m stream.bench.faust_relay --out bench-faust-relay-out --ready FILE
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
import mode
import orjson

from stream.adapters.faust_batches import BATCH_GAP_S, BatchFeeder, ConsumerLag
from stream.adapters.faust_config import faust_config
from stream.adapters.outputs import OutputProducer
from stream.adapters.user_group import UserGroup
from stream.bench.faust_baseline import run_app
from stream.broker import free_port
from stream.plan import Record
from stream.settings import CONTROL_TOPICS, USER_TOPICS, Settings

FAUST_RELAY_OUT = "bench-faust-relay-out"


def answer(value: bytes | None) -> bytes | None:
    """The probe's view of a list: the user and the event that triggered it (None: not an
    event the probe sent, e.g. a control record)."""
    try:
        m = orjson.loads(value or b"")
        return orjson.dumps({"user_id": m["user_id"], "trigger": {"event_id": m["event_id"]}})
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def build_app(settings: Settings, flavour: str, out: str, ready: Path) -> faust.App:
    """A Faust app with the worker's configuration and one relaying agent."""
    app = faust.App(
        f"{settings.topic_prefix}{settings.app_id}",
        **faust_config(settings, flavour),
        store="memory://",
        web_port=free_port(),
        stream_wait_empty=True,  # as the worker's
    )
    app.recstream_fetch_max_wait_ms = settings.fetch_max_wait_ms  # type: ignore[attr-defined]
    app.recstream_no_tables = True  # type: ignore[attr-defined]  # (as the worker)
    outputs = OutputProducer(settings)

    async def relay_records(pairs: Sequence[tuple[bytes | None, bytes | None]]) -> None:
        futures = []
        for key, value in pairs:
            body = answer(value)
            if body is not None:
                futures.append(await outputs.send(out, key or b"", body))
        if futures:
            await asyncio.gather(*futures)

    async def handle(events: Sequence[Any]) -> None:
        await relay_records([(e.message.key, e.message.value) for e in events])

    if settings.user_consumer == "aiokafka":

        async def handle_records(records: Sequence[Record]) -> None:
            await relay_records([(r.key, r.value) for r in records])

        group = UserGroup(
            settings, USER_TOPICS + CONTROL_TOPICS, handle_records,
            lambda _partitions: ready.touch(), flavour,
        )  # fmt: skip
        app.add_dependency(_Outputs(outputs, group))
        return app

    channel = app.topic(
        *(settings.topic(t) for t in USER_TOPICS + CONTROL_TOPICS),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    async def relay(stream: Any) -> None:
        lag = ConsumerLag(app.consumer.highwater)
        within = settings.batch_within_ms / 1000.0
        feeder = BatchFeeder(
            handle, settings.batch_max, within, BATCH_GAP_S, lag,
            backlog_min=settings.batch_backlog_min,
        )  # fmt: skip
        await feeder.run(stream)

    app.agent(channel, name="bench.faust_relay")(relay)
    app.add_dependency(_Outputs(outputs, None))

    async def on_assigned(*_: Any, **__: Any) -> None:
        ready.touch()

    app.on_rebalance_complete.connect(on_assigned)
    return app


class _Outputs(mode.Service):
    """The output producer (and the user group, if it reads) started before anything is read
    and stopped with the app, as the worker's (``stream.lifecycle``)."""

    def __init__(self, outputs: OutputProducer, group: UserGroup | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outputs = outputs
        self.group = group

    async def on_start(self) -> None:
        await self.outputs.start()
        if self.group is not None:
            await self.group.start()

    async def on_stop(self) -> None:
        if self.group is not None:
            await self.group.stop()
        await self.outputs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=FAUST_RELAY_OUT)
    parser.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args()
    run_app(lambda settings, flavour: build_app(settings, flavour, args.out, args.ready))


if __name__ == "__main__":
    main()
