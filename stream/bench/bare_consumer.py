"""A bare aiokafka consumer over the user topics: what reading the backlog costs with no
framework at all (the ceiling every other figure is a fraction of).

Assigned every partition (no group join), reads from the beginning, counts records; the same
fetch wait as the worker. Usage (worker environment)::

    python -m stream.bench.bare_consumer --expect N --result FILE
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.adapters.event_loop import use_event_loop
from stream.bench.rate import RateCounter
from stream.settings import USER_TOPICS, Settings


async def consume(settings: Settings, counter: RateCounter) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        **settings.kafka_security.aiokafka_kwargs(),
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata for every topic
        tps = [
            TopicPartition(settings.topic(t), p)
            for t in USER_TOPICS
            for p in sorted(consumer.partitions_for_topic(settings.topic(t)) or ())
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        counter.begin()
        while not counter.written:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                counter.tick(len(records))
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()
    settings = Settings.from_env()
    use_event_loop(settings.event_loop)  # the worker's loop: measured like with like
    asyncio.run(consume(settings, RateCounter(args.expect, args.result)))


if __name__ == "__main__":
    main()
