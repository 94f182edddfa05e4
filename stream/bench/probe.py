"""Downstream consumer process: reads an output topic and logs when each answer arrived.

It stands for whatever consumes `recommendations` in production (a web tier, a push service),
so end-to-end latency is measured where a user would see it, not inside the worker. Assigned
every partition (no group join), from the beginning; a short fetch wait, because on the
bundled broker a waiting fetch returns only after that wait (DESIGN.md). Each line of the log
is ``trigger_event_id<TAB>user_id<TAB>received_at`` for the ``for_you`` feed. A file
``<log>.ready`` appears once it is consuming. Stops on SIGTERM, log flushed.
Usage (worker environment)::

    python -m stream.bench.probe --topic recommendations --log FILE
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.settings import Settings

PROBE_FETCH_WAIT_MS = 5


async def assigned_consumer(
    settings: Settings, topics: list[str], wait_ms: int
) -> AIOKafkaConsumer:
    """A started consumer assigned every partition of ``topics`` (prefixed), from the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=wait_ms,
        **settings.kafka_security.aiokafka_kwargs(),
    )
    await consumer.start()
    await consumer.topics()  # metadata for every topic
    tps = [
        TopicPartition(settings.topic(t), p)
        for t in topics
        for p in sorted(consumer.partitions_for_topic(settings.topic(t)) or ())
    ]
    if not tps:
        await consumer.stop()
        raise RuntimeError(f"no partitions for {topics}")
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return consumer


async def probe(settings: Settings, topic: str, log: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = await assigned_consumer(settings, [topic], PROBE_FETCH_WAIT_MS)
    Path(f"{log}.ready").touch()
    try:
        with open(log, "a") as out:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=50)
                now = time.time()
                for records in batches.values():
                    for record in records:
                        m = orjson.loads(record.value)
                        if m.get("feed", "for_you") == "for_you":
                            out.write(f"{m['trigger']['event_id']}\t{m['user_id']}\t{now:.6f}\n")
                out.flush()
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(probe(Settings.from_env(), args.topic, args.log))


if __name__ == "__main__":
    main()
