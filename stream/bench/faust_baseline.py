"""Faust baselines, run as their own process on the same broker and backlog as the pipeline.

- ``noop``: one agent over the user topics that does nothing per event — Faust's own floor.
- ``naive``: the same agent doing one Table update and one send per event: what a first Faust
  version of this product would do.

Both get the pipeline's Faust settings (``stream.adapters.faust_config``: on the bundled broker a
short rebalance and fetch wait; the naive agent's Table also one record per produced batch) so
the ratios compare code, not configuration. Usage (environment as for ``recstream worker``)::

    python -m stream.bench.faust_baseline noop|naive --expect N --result FILE
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust

from stream.adapters.event_loop import use_event_loop
from stream.adapters.faust_config import faust_config
from stream.bench.rate import RateCounter
from stream.broker import free_port
from stream.settings import USER_TOPICS, Settings
from stream.worker import prepare

#: output topic of the naive agent (created by the harness with the input topics' partitions)
NAIVE_OUT = "bench-naive-out"


def build_app(kind: str, settings: Settings, flavour: str, counter: RateCounter) -> faust.App:
    """The Faust app of one baseline, configured like ``stream.app.create_app``."""
    config = faust_config(settings, flavour)
    if flavour == "tansu":
        # A Faust Table's changelog needs the bundled broker's one-record-per-batch workaround
        # (DESIGN.md "Known limits"); the worker no longer has a Faust Table, this baseline does.
        config.update(producer_max_batch_size=1, producer_linger_ms=0)
    app = faust.App(
        f"{settings.topic_prefix}{settings.app_id}",
        **config,
        store="rocksdb://",
        web_port=free_port(),
        stream_wait_empty=False,
    )
    app.recstream_fetch_max_wait_ms = settings.fetch_max_wait_ms  # type: ignore[attr-defined]
    topics = app.topic(
        *(settings.topic(t) for t in USER_TOPICS),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    if kind == "noop":

        async def noop(stream: Any) -> None:
            async for _value in stream:
                counter.tick()

        app.agent(topics, name="bench.noop")(noop)
        return app
    table = app.Table("bench-naive", default=int, partitions=settings.partitions)
    out = app.topic(
        settings.topic(NAIVE_OUT),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    async def naive(stream: Any) -> None:
        async for event in stream.events():
            key = event.key.decode() if event.key else ""
            table[key] += 1
            await out.send(key=event.key, value=event.value)
            counter.tick()

    app.agent(topics, name="bench.naive")(naive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("noop", "naive"))
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()
    counter = RateCounter(args.expect, args.result)
    run_app(lambda settings, flavour: build_app(args.kind, settings, flavour, counter))


def run_app(build: Callable[[Settings, str], faust.App]) -> None:
    """Run the app ``build(settings, flavour)`` makes as a Faust worker, until it is stopped:
    settings from the environment, the worker's event loop, topics created as the worker does."""
    logging.basicConfig(level=logging.INFO)
    settings = Settings.from_env()
    use_event_loop(settings.event_loop)  # the worker's loop: measured like with like
    flavour = asyncio.run(prepare(settings))
    worker = faust.Worker(
        build(settings, flavour), loglevel="info", quiet=True, loop=asyncio.new_event_loop()
    )
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
