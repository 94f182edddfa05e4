"""`recstream init`: create what a deployment needs before its workers start.

Topics get their final partition counts here (the bundled broker cannot add partitions later,
and on Kafka adding them would move users between partitions and their state), and the Qdrant
`users` collection is created with its payload indexes — once, by a one-shot job
(compose.yaml's ``init`` service), instead of racing between worker replicas.
"""

from __future__ import annotations

import asyncio

from stream.adapters.qdrant_sink import make_user_sink
from stream.adapters.topics import all_topics
from stream.settings import Settings


def provision(settings: Settings) -> list[str]:
    """Idempotent: existing topics and collections are kept. Returns one line per step."""
    from stream.worker import prepare

    flavour = asyncio.run(prepare(settings))
    lines = [
        f"topics ready on {settings.kafka_bootstrap} ({flavour}): {len(all_topics())} topics "
        f"x {settings.partitions} partitions, prefix {settings.topic_prefix!r}"
    ]
    if settings.qdrant_url is None:
        lines.append("qdrant: embedded Qdrant Edge, each worker creates its own shard")
    else:
        sink = make_user_sink(settings.qdrant_url, settings.qdrant_api_key, settings.data_dir)
        try:
            sink.count()  # creates the collection and its indexes (sinks create it on first use)
            lines.append(f"qdrant: collection 'users' ready at {settings.qdrant_url}")
        finally:
            sink.close()
    return lines
