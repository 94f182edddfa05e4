"""User-keyed topics with a partition count of their own (made by someone else, or auto-created by
a producer that came first) stop a worker at start with the reason, instead of splitting users'
state between partition numbers."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.adapters.topics import PartitionMismatch, all_topics, co_partitioned
from stream.local_worker import spawn_worker
from stream.settings import Settings
from stream.worker import prepare

pytestmark = pytest.mark.integration

_prefixes = itertools.count()


def _settings(broker: Any, tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    env = dict(
        os.environ,
        RECSTREAM_KAFKA_BOOTSTRAP=broker.bootstrap,
        RECSTREAM_TOPIC_PREFIX=f"cp{os.getpid()}x{next(_prefixes)}-",
        RECSTREAM_DATA_DIR=str(tmp_path / "data"),
        RECSTREAM_PARTITIONS="4",
    )
    env.pop("RECSTREAM_QDRANT_URL", None)
    return Settings.from_env(env), env


async def _create(settings: Settings, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topic(t), n, 1) for t, n in topics.items()])
    finally:
        await admin.close()


def test_one_topic_auto_created_with_one_partition_stops_the_worker(
    broker: Any, tmp_path: Path
) -> None:
    settings, env = _settings(broker, tmp_path)
    asyncio.run(_create(settings, {"clicks": 1}))  # a producer came first
    with pytest.raises(PartitionMismatch, match=r"clicks has 1: recreate them"):
        asyncio.run(prepare(settings))
    # the worker, as an operator starts it: a prompt non-zero exit with the reason
    log = tmp_path / "worker.log"
    process = spawn_worker(env, log)
    try:
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text(errors="replace")
    assert code != 0 and "must be co-partitioned" in text and "clicks has 1" in text, text[-2000:]


def test_topics_sharing_another_count_say_which_setting_fits(broker: Any, tmp_path: Path) -> None:
    settings, _ = _settings(broker, tmp_path)
    keyed = {t.removeprefix(settings.topic_prefix) for t in co_partitioned(settings)}
    asyncio.run(_create(settings, dict.fromkeys(keyed, 2)))
    with pytest.raises(PartitionMismatch, match="set RECSTREAM_PARTITIONS=2"):
        asyncio.run(prepare(settings))
    # with the setting that fits, the rest is created alike and the check passes
    asyncio.run(prepare(settings.with_(partitions=2)))


def test_the_topics_it_creates_itself_pass(broker: Any, tmp_path: Path) -> None:
    settings, _ = _settings(broker, tmp_path)
    asyncio.run(prepare(settings))
    asyncio.run(prepare(settings))  # again, all existing: still co-partitioned
    assert len(co_partitioned(settings)) == 9 and len(all_topics()) > 9
