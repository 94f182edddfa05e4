"""Rate-controlled load generator process: events from a JSONL file onto their topics, each
send time logged, so latency can be measured from the moment an event is produced.

The schedule is absolute (event n is due at start + n / rate): a late send is not made up by
sleeping less later, and sends run ahead of the schedule never. Each line of the send log is
``event_id<TAB>user_id<TAB>sent_at<TAB>ts`` (wall clock, s; then the event's own time, empty
when it has none), written just before ``producer.send``.
Usage (worker environment)::

    python -m stream.bench.loadgen --events FILE --rate R --sent LOG
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from stream.replay import KEY_FIELD
from stream.settings import Settings

#: producer linger: a few ms, as DESIGN.md recommends for the bundled broker (and the worker's
#: output producer uses)
LINGER_MS = 2


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    n = 0
    with open(path, "wb") as f:
        for record in records:
            f.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            n += 1
    return n


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            yield orjson.loads(line)


async def produce_paced(settings: Settings, events: Path, rate: float, sent: Path) -> int:
    records = [
        (
            settings.topic(r["topic"]),
            str(r[KEY_FIELD[r["topic"]]]).encode(),
            orjson.dumps({k: v for k, v in r.items() if k != "topic"}),
            str(r.get("event_id", "")),
            str(r.get("user_id", "")),
            str(r.get("ts", "")),
        )
        for r in read_jsonl(events)
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=LINGER_MS,
        acks="all",
        **settings.kafka_security.aiokafka_kwargs(),
    )
    await producer.start()
    lines: list[str] = []
    futures = []
    try:
        start = time.monotonic()
        for n, (topic, key, value, event_id, user_id, ts) in enumerate(records):
            wait = start + n / rate - time.monotonic()
            if wait > 0.0005:
                await asyncio.sleep(wait)
            lines.append(f"{event_id}\t{user_id}\t{time.time():.6f}\t{ts}\n")
            futures.append(await producer.send(topic, value=value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
        sent.write_text("".join(lines))
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--sent", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(produce_paced(Settings.from_env(), args.events, args.rate, args.sent))


if __name__ == "__main__":
    main()
