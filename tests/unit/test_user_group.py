"""The user topics' bare consumer: batches in event time, commits only what was handled, a
revocation waits for the batch in hand and drops the rest of the fetch, and the range
assignor keeps every topic's partition numbers together (co-partitioning)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from stream.adapters.user_group import ASSIGNOR, UserGroup, group_id
from stream.plan import Record
from stream.settings import CONTROL_TOPICS, USER_TOPICS, Settings


@dataclass
class Msg:
    offset: int
    timestamp: int
    key: bytes = b"u"
    value: bytes = b"{}"


class FakeConsumer:
    def __init__(self, refuse: bool = False) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.refuse = refuse
        self.stopped = False

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.refuse:
            raise CommitFailedError("rebalanced")
        self.commits.append(dict(offsets))

    async def stop(self) -> None:
        self.stopped = True

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("p-clicks", 1), TopicPartition("p-carts", 1)}


def _group(batch_max: int = 2, **kw: Any) -> tuple[UserGroup, list[list[Record]]]:
    handled: list[list[Record]] = []

    async def handle(records: Sequence[Record]) -> None:
        handled.append(list(records))

    settings = replace(Settings(), topic_prefix="p-", batch_max=batch_max, **kw)
    group = UserGroup(settings, ("clicks", "carts"), handle)
    group.consumer = FakeConsumer()  # type: ignore[assignment]
    return group, handled


CLICKS, CARTS = TopicPartition("p-clicks", 1), TopicPartition("p-carts", 1)


def test_a_fetch_is_handled_in_event_time_in_batches_and_committed() -> None:
    group, handled = _group(batch_max=2)
    fetched = {CLICKS: [Msg(10, 100), Msg(11, 300)], CARTS: [Msg(5, 200)]}
    asyncio.run(group._handle_fetch(fetched))  # type: ignore[arg-type]
    assert [[(r.topic, r.offset) for r in b] for b in handled] == [
        [("clicks", 10), ("carts", 5)],
        [("clicks", 11)],
    ]
    assert handled[0][0].timestamp_ms == 100 and handled[0][0].partition == 1
    asyncio.run(group.commit_handled())
    assert group.consumer.commits == [{CLICKS: 12, CARTS: 6}]  # type: ignore[union-attr]
    asyncio.run(group.commit_handled())  # nothing new: no second commit
    assert len(group.consumer.commits) == 1  # type: ignore[union-attr]


def test_without_event_time_a_fetch_keeps_the_consumers_order() -> None:
    group, handled = _group(batch_max=8, event_time_order=False)
    fetched = {CLICKS: [Msg(10, 300)], CARTS: [Msg(5, 200)]}
    asyncio.run(group._handle_fetch(fetched))  # type: ignore[arg-type]
    assert [(r.topic, r.offset) for r in handled[0]] == [("clicks", 10), ("carts", 5)]


def test_a_revocation_waits_for_the_batch_in_hand_and_drops_the_rest_of_the_fetch() -> None:
    handled: list[list[int]] = []
    release = asyncio.Event()

    async def handle(records: Sequence[Record]) -> None:
        handled.append([r.offset for r in records])
        await release.wait()

    settings = replace(Settings(), topic_prefix="p-", batch_max=1)
    group = UserGroup(settings, ("clicks",), handle)
    consumer = group.consumer = FakeConsumer()  # type: ignore[assignment]

    async def scenario() -> None:
        fetch = asyncio.create_task(
            group._handle_fetch({CLICKS: [Msg(1, 1), Msg(2, 2), Msg(3, 3)]})  # type: ignore[dict-item]
        )
        await asyncio.sleep(0.01)  # the first batch is in hand
        revoking = asyncio.create_task(group.revoked({CLICKS}))
        await asyncio.sleep(0.01)
        assert not revoking.done()  # waits for the batch in hand
        release.set()
        await revoking
        await fetch

    asyncio.run(scenario())
    assert handled == [[1]]  # offsets 2 and 3 are left for the partition's next owner
    assert consumer.commits == [{CLICKS: 2}]


def test_a_refused_commit_is_not_fatal_and_not_retried() -> None:
    group, _ = _group()
    group.consumer = FakeConsumer(refuse=True)  # type: ignore[assignment]
    asyncio.run(group._handle_fetch({CLICKS: [Msg(1, 1)]}))  # type: ignore[dict-item]
    asyncio.run(group.commit_handled())
    assert group._handled == {} and group.committed == {}


def test_stop_commits_what_was_handled_then_leaves() -> None:
    group, _ = _group()
    consumer = group.consumer
    asyncio.run(group._handle_fetch({CARTS: [Msg(7, 1)]}))  # type: ignore[dict-item]

    async def run() -> None:
        group._task = asyncio.create_task(asyncio.sleep(10))  # the fetch loop
        await group.stop()

    asyncio.run(run())
    assert consumer.commits == [{CARTS: 8}]  # type: ignore[union-attr]
    assert consumer.stopped and group.consumer is None  # type: ignore[union-attr]


def test_a_stop_during_start_up_does_not_wait_for_the_batch_in_hand() -> None:
    group, _ = _group()
    consumer = group.consumer

    async def run() -> None:
        await group._busy.acquire()  # a batch waiting for the engine to be ready
        group._task = asyncio.create_task(asyncio.sleep(10))
        await asyncio.wait_for(group.stop(finish=False), 1.0)

    asyncio.run(run())
    assert consumer.commits == [] and consumer.stopped  # type: ignore[union-attr]


def test_partition_numbers_the_worker_owns() -> None:
    group, _ = _group()
    assert group.partitions() == {1}
    group.consumer = None
    assert group.partitions() == set()


def test_its_own_group_id() -> None:
    settings = replace(Settings(), topic_prefix="shop-", app_id="recs")
    assert group_id(settings) == "shop-recs-users"


class _Cluster:
    def __init__(self, partitions: int) -> None:
        self.n = partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


@pytest.mark.parametrize("members", [1, 2, 3, 5])
@pytest.mark.parametrize("partitions", [4, 8])
def test_the_assignor_keeps_a_users_topics_on_one_member(members: int, partitions: int) -> None:
    topics = [f"p-{t}" for t in USER_TOPICS + CONTROL_TOPICS]
    meta = {f"m{i}": ASSIGNOR.metadata(topics) for i in range(members)}
    assignment = ASSIGNOR.assign(_Cluster(partitions), meta)  # type: ignore[arg-type]
    owner: dict[tuple[str, int], str] = {}
    for member, assigned in assignment.items():
        for topic, parts in assigned.assignment:
            owner.update({(topic, p): member for p in parts})
    for p in range(partitions):  # every topic's partition p has one owner, the same for all
        assert len({owner[(topic, p)] for topic in topics}) == 1


class Buffered(FakeConsumer):
    """What aiokafka's ``getmany`` does with records it already holds: only the partitions
    asked for (all when none), at most ``max_records``, in partition order."""

    def __init__(self, held: dict[TopicPartition, list[Msg]]) -> None:
        super().__init__()
        self.held = held
        self.calls: list[tuple[tuple[TopicPartition, ...], int, int | None]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Msg]]:
        self.calls.append((partitions, timeout_ms, max_records))
        out: dict[TopicPartition, list[Msg]] = {}
        room = max_records
        for tp, msgs in self.held.items():
            if (partitions and tp not in partitions) or not msgs or room == 0:
                continue
            take = msgs[: room if room is not None else len(msgs)]
            self.held[tp] = msgs[len(take) :]
            out[tp] = take
            room = None if room is None else room - len(take)
        return out


REFRESH = TopicPartition("p-refresh", 1)


def test_a_fetch_takes_every_user_event_but_a_bounded_share_of_refreshes() -> None:
    """A restock of a popular item sends thousands of refreshes: taken whole, they held every
    user event of the next fetches behind them; the rest waits in the consumer's buffer."""
    settings = replace(Settings(), topic_prefix="p-", refresh_batch_max=256)
    group = UserGroup(settings, ("clicks", "refresh"), lambda records: asyncio.sleep(0))
    held = {
        REFRESH: [Msg(n, 100) for n in range(600)],
        CLICKS: [Msg(10, 300), Msg(11, 301)],
    }
    group.consumer = consumer = Buffered(held)  # type: ignore[assignment]
    first = asyncio.run(group._fetch(consumer))
    assert len(first[CLICKS]) == 2 and [m.offset for m in first[REFRESH]] == list(range(256))
    assert consumer.calls[0] == ((REFRESH,), 0, 256)  # only takes what is held
    assert consumer.calls[1][:2] == ((CLICKS,), 0)  # no wait: refreshes are there
    sizes = [len(asyncio.run(group._fetch(consumer)).get(REFRESH, [])) for _ in range(3)]
    assert sizes == [256, 88, 0]
    assert consumer.calls[-1][:2] == ((CLICKS,), settings.fetch_max_wait_ms)  # none: it waits
    unbounded = UserGroup(
        replace(settings, refresh_batch_max=0), ("clicks", "refresh"), group.handle
    )
    consumer = Buffered({REFRESH: [Msg(n, 100) for n in range(600)]})
    assert len(asyncio.run(unbounded._fetch(consumer))[REFRESH]) == 600
    assert consumer.calls == [((), settings.fetch_max_wait_ms, None)]


def test_the_bound_comes_from_the_environment() -> None:
    assert Settings.from_env({}).refresh_batch_max == 256
    assert Settings.from_env({"RECSTREAM_REFRESH_BATCH_MAX": "0"}).refresh_batch_max == 0
    with pytest.raises(ValueError, match="RECSTREAM_REFRESH_BATCH_MAX"):
        Settings.from_env({"RECSTREAM_REFRESH_BATCH_MAX": "-5"})
