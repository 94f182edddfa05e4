"""Topic administration and broker detection.

Topics are created up front with their final partition count: the bundled broker offers no
CreatePartitions, and user topics must be co-partitioned so one user's state lives in one place.
"""

from __future__ import annotations

import contextlib
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.settings import CONTROL_TOPICS, ITEM_TOPICS, OUTPUT_TOPICS, USER_TOPICS, Settings

log = logging.getLogger(__name__)

#: Topics whose latest value per key is the state (a profile body per name): compacted, so a
#: worker that starts later still finds every live body, however old (not time-expired).
COMPACTED: tuple[str, ...] = ("ranking-profiles",)

#: Node id the bundled Tansu broker reports (set RECSTREAM_KAFKA_FLAVOUR to override detection).
TANSU_NODE_ID = 111


def all_topics() -> tuple[str, ...]:
    return USER_TOPICS + ITEM_TOPICS + CONTROL_TOPICS + OUTPUT_TOPICS


async def ensure_topics(settings: Settings, names: tuple[str, ...] | None = None) -> None:
    """Create missing topics (prefixed) with ``settings.partitions`` partitions. The user-keyed
    ones must all have that count (``PartitionMismatch`` otherwise): those that exist already are
    checked before anything is created (no topic is made for a count that is about to be
    refused), all of them again after (another worker may have created some meanwhile)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security.aiokafka_kwargs()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        from stream.adapters.changelog_store import changelog_name

        default = (*all_topics(), changelog_name(settings))
        wanted = [settings.topic(n) for n in (names or default)]
        missing = [t for t in wanted if t not in existing]
        keyed = sorted(set(wanted) & set(co_partitioned(settings)))
        await check_co_partitioned(admin, [t for t in keyed if t in existing], settings.partitions)
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                compacted = {settings.topic(n) for n in COMPACTED}
                await admin.create_topics(
                    [
                        NewTopic(
                            t,
                            num_partitions=settings.partitions,
                            replication_factor=1,
                            topic_configs={"cleanup.policy": "compact"} if t in compacted else None,
                        )
                        for t in missing
                    ]
                )
            log.info("created topics %s", ", ".join(missing))
            await check_co_partitioned(admin, keyed, settings.partitions)
    finally:
        await admin.close()


def co_partitioned(settings: Settings) -> list[str]:
    """The topics one user's records must share a partition number on: the user and control
    topics (one agent reads them, one batch holds all of a user's events) and the changelog
    holding user state under the input's partition number."""
    from stream.adapters.changelog_store import changelog_name

    names = (*USER_TOPICS, *CONTROL_TOPICS, changelog_name(settings))
    return [settings.topic(n) for n in names]


class PartitionMismatch(RuntimeError):
    """User-keyed topics without ``RECSTREAM_PARTITIONS`` partitions (created by someone else,
    or auto-created by a producer that came first): a user's clicks and orders would land on
    different partition numbers, so their state would split between two keys, or two workers."""


async def check_co_partitioned(admin: AIOKafkaAdminClient, topics: list[str], want: int) -> None:
    """Raise ``PartitionMismatch`` naming every topic whose partition count is not ``want``."""
    if not topics:
        return
    counts = {
        t["topic"]: len(t["partitions"])
        for t in await admin.describe_topics(topics)
        if not t.get("error_code")  # (one it cannot describe is not held against it)
    }
    wrong = {t: n for t, n in counts.items() if n != want}
    if not wrong:
        return
    found = ", ".join(f"{t} has {n}" for t, n in sorted(wrong.items()))
    recreate = f"recreate them with {want} (adding partitions would move users and their state)"
    shared = set(counts.values())
    if len(shared) == 1:  # every existing one agrees: the setting may be what is off
        fix = f"set RECSTREAM_PARTITIONS={min(shared)} to match them, or {recreate}"
    else:
        fix = recreate
    raise PartitionMismatch(
        f"user-keyed topics must be co-partitioned with RECSTREAM_PARTITIONS={want} partitions "
        f"(one user's events and state on one partition number), but {found}: {fix}"
    )


async def detect_flavour(settings: Settings) -> str:
    """'tansu' when the bundled broker answers (its workarounds switch on), else 'kafka'."""
    if settings.kafka_flavour != "auto":
        return settings.kafka_flavour
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security.aiokafka_kwargs()
    )
    await producer.start()
    try:
        # aiokafka does not expose the cluster id; Tansu always reports node id 111.
        node_ids = {b.nodeId for b in producer.client.cluster.brokers()}
        return "tansu" if node_ids == {TANSU_NODE_ID} else "kafka"
    finally:
        await producer.stop()
