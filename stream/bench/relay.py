"""The broker floor: a relay process that does nothing but consume → produce.

Event produced → relay consumes → relay produces a tiny answer → probe consumes: the same hops
as the pipeline with none of its work, on the same broker, with the worker's fetch wait and
the output producer's linger. End-to-end latency can never beat this; the pipeline's figure is
read against it. Writes ``<ready>`` once consuming. Usage (worker environment)::

    python -m stream.bench.relay --out relay-out --ready FILE
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from stream.adapters.event_loop import use_event_loop
from stream.adapters.outputs import OUTPUT_LINGER_MS, OUTPUT_MAX_BATCH_BYTES
from stream.bench.probe import assigned_consumer
from stream.settings import USER_TOPICS, Settings

RELAY_OUT = "bench-relay-out"


async def relay(settings: Settings, out_topic: str, ready: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=OUTPUT_LINGER_MS,
        max_batch_size=OUTPUT_MAX_BATCH_BYTES,
        acks="all",
        **settings.kafka_security.aiokafka_kwargs(),
    )
    await producer.start()
    consumer = await assigned_consumer(settings, list(USER_TOPICS), settings.fetch_max_wait_ms)
    ready.touch()
    target = settings.topic(out_topic)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            futures = []
            for records in batches.values():
                for record in records:
                    m = orjson.loads(record.value)
                    answer = {"user_id": m["user_id"], "trigger": {"event_id": m["event_id"]}}
                    futures.append(
                        await producer.send(target, value=orjson.dumps(answer), key=record.key)
                    )
            if futures:
                await asyncio.gather(*futures)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=RELAY_OUT)
    parser.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args()
    settings = Settings.from_env()
    use_event_loop(settings.event_loop)  # the worker's loop: measured like with like
    asyncio.run(relay(settings, args.out, args.ready))


if __name__ == "__main__":
    main()
