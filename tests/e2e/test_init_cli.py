"""`recstream init` (compose.yaml's one-shot initialiser) against a real broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from qdrant_client import QdrantClient

from stream.adapters.topics import all_topics
from stream.broker import LocalBroker

pytestmark = pytest.mark.e2e


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
    finally:
        await consumer.stop()


def test_init_creates_topics_and_the_qdrant_collection_idempotently(
    broker: LocalBroker, tmp_path: Path
) -> None:
    prefix = f"init{os.getpid()}-"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env.update(
        RECSTREAM_KAFKA_BOOTSTRAP=broker.bootstrap,
        RECSTREAM_TOPIC_PREFIX=prefix,
        RECSTREAM_PARTITIONS="6",
        RECSTREAM_QDRANT_URL=f"local://{tmp_path / 'qdrant'}",
        RECSTREAM_DATA_DIR=str(tmp_path / "data"),
    )
    for _ in range(2):  # a restarted init job must succeed too
        done = subprocess.run(
            [sys.executable, "-m", "stream.cli", "init"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "collection 'users' ready" in done.stdout
    topics = [prefix + name for name in all_topics()]
    assert asyncio.run(partition_counts(broker.bootstrap, topics)) == {t: 6 for t in topics}
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        assert client.collection_exists("users")
    finally:
        client.close()
