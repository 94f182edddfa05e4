"""What the worker's two bare consumer groups share (the item group and the user group): a
consumer that joins its group and commits by hand, and the committed offsets the lag gauge
counts from. Apart from either group so neither imports the other."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from stream.adapters.consumer_task import ConsumerTask
from stream.settings import Settings

log = logging.getLogger(__name__)


def group_kwargs(settings: Settings, flavour: str) -> dict[str, Any]:
    """Timeouts: the bundled broker holds a JoinGroup until half the session timeout has passed
    (``Settings.session_timeout_s``), so keep it short there, as the Faust group does; Kafka's
    defaults else."""
    if flavour != "tansu":
        return {}
    return {
        "rebalance_timeout_ms": int(settings.rebalance_timeout_s * 1000),
        "session_timeout_ms": int(settings.session_timeout_s * 1000),
        "heartbeat_interval_ms": 1000,
    }


def group_consumer(
    settings: Settings, group: str, flavour: str, wait_ms: int, **extra: Any
) -> AIOKafkaConsumer:
    """A consumer in ``group`` that commits by hand and starts a partition it has no commit on
    from its earliest offset."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=wait_ms,
        **extra,
        **group_kwargs(settings, flavour),
        **settings.kafka_security.aiokafka_kwargs(),
    )


class GroupTask(ConsumerTask):
    """A ``ConsumerTask`` in a group: ``commit`` what was handled; ``done_upto`` (the lag) counts
    from this worker's commits."""

    #: the group's name in logs
    name = "group"

    def __init__(self) -> None:
        self.committed: dict[TopicPartition, int] = {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit ``offsets``; False if a rebalance refused it or it failed (the records are then
        read again, by this worker or the partition's next owner: at least once)."""
        if not offsets or self.consumer is None:
            return False
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.info("%s: commit refused by a rebalance (%s)", self.name, exc)
            return False
        except KafkaError:
            log.warning("%s: commit failed; the records will be re-read", self.name, exc_info=True)
            return False
        self.committed.update(offsets)
        return True

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Revoked partitions leave the lag: their next owner moves them on."""
        for tp in partitions:
            self.committed.pop(tp, None)

    async def done_upto(self, tp: TopicPartition) -> int:
        """What this worker committed on ``tp`` (its fetch position until its first commit)."""
        done = self.committed.get(tp)
        return done if done is not None else await super().done_upto(tp)
