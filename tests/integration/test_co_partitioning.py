"""One user's records on one partition number, or a clear refusal: user-keyed topics with a
partition count of their own (made by someone else, or auto-created by a producer that came
first) stop a worker at start with the reason; an event a producer put off its user's partition
(another partitioner) is dead-lettered. Either used to split users' state silently."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.adapters.codec import Decoder
from stream.adapters.topics import PartitionMismatch, all_topics, co_partitioned
from stream.adapters.validation import get_validators
from stream.local_worker import spawn_worker
from stream.settings import USER_TOPICS, Settings
from stream.tools import TopicReader
from stream.worker import prepare
from tests.conftest import new_deployment
from tests.integration.test_pipeline import CATALOG, event, send_and_wait

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
    fits = r"clicks has 1: set RECSTREAM_PARTITIONS=1 to match them, or recreate them with 4"
    with pytest.raises(PartitionMismatch, match=fits):
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


async def _existing(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        return {t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)}
    finally:
        await admin.close()


def test_topics_sharing_another_count_say_which_setting_fits(broker: Any, tmp_path: Path) -> None:
    settings, _ = _settings(broker, tmp_path)
    asyncio.run(_create(settings, dict.fromkeys(USER_TOPICS, 2)))  # made by a platform team
    with pytest.raises(PartitionMismatch, match="set RECSTREAM_PARTITIONS=2"):
        asyncio.run(prepare(settings))
    # refused before creating anything: no control topic or changelog with 4 partitions to undo
    made = asyncio.run(_existing(settings))
    assert made == {settings.topic(t) for t in USER_TOPICS}
    # with the setting that fits, the rest is created alike and the check passes
    asyncio.run(prepare(settings.with_(partitions=2)))
    assert set(co_partitioned(settings)) <= asyncio.run(_existing(settings))


def test_topics_that_disagree_among_themselves_must_be_recreated(
    broker: Any, tmp_path: Path
) -> None:
    settings, _ = _settings(broker, tmp_path)
    asyncio.run(_create(settings, {"clicks": 1, "orders": 2, "carts": 4}))
    with pytest.raises(PartitionMismatch) as raised:
        asyncio.run(prepare(settings))
    message = str(raised.value)
    assert "clicks has 1, " in message and "orders has 2: recreate them with 4" in message
    assert "carts" not in message and "set RECSTREAM_PARTITIONS" not in message


def test_the_topics_it_creates_itself_pass(broker: Any, tmp_path: Path) -> None:
    settings, _ = _settings(broker, tmp_path)
    asyncio.run(prepare(settings))
    asyncio.run(prepare(settings))  # again, all existing: still co-partitioned
    assert len(co_partitioned(settings)) == 9 and len(all_topics()) > 9


def test_an_event_off_its_users_partition_is_dead_lettered_live(
    broker: Any, tmp_path: Path
) -> None:
    """A producer with another partitioner (librdkafka's CRC32 default, say) put a user's click
    elsewhere: dead-lettered with the reason, and the user's next click, on its home partition,
    is answered by the same profile as before."""
    dep = new_deployment(broker, tmp_path)
    dep.produce([("catalog", m) for m in CATALOG])
    worker = dep.worker("w").start()
    try:
        worker.wait_ready()
        first = send_and_wait(dep, [event("clicks", "u-crc", item_id="sku-2")])
        home = Decoder(get_validators(), 1024, dep.settings.partitions).home_partition(b"u-crc")
        stray = event("clicks", "u-crc", item_id="sku-3")[1]

        async def misplace() -> dict[str, Any]:
            async with TopicReader(dep.settings, "dead-letters") as reader:
                producer = AIOKafkaProducer(bootstrap_servers=dep.settings.kafka_bootstrap)
                await producer.start()
                try:
                    await producer.send_and_wait(
                        dep.settings.topic("clicks"),
                        orjson.dumps(stray),
                        key=b"u-crc",
                        partition=(home + 1) % dep.settings.partitions,
                    )
                finally:
                    await producer.stop()
                return await reader.wait_for(lambda m: m["reason"] == "wrong_partition", 30)

        letter = asyncio.run(misplace())
        assert f"belongs on partition {home}" in letter["error"] and letter["key"] == "u-crc"
        later = send_and_wait(dep, [event("clicks", "u-crc", item_id="sku-4")])
        assert later["state_version"] == first["state_version"] + 1  # the stray one not applied
    finally:
        assert worker.stop() == 0
