"""`learned` records: a batch's observations of one source partition grouped into one record.

A record costs the producer, the broker and every worker following `learned` far more than its
~141 bytes; one record an event made a drained backlog pay that per event. Grouping must not
change what any reader learns: same key, same order, de-duplicated per observation.
"""

from __future__ import annotations

import orjson
import pytest

from stream.domain.catalog import Catalog
from stream.domain.learning import (
    GROUP,
    Learner,
    Observation,
    learned_records,
    observations_from_bytes,
)
from stream.domain.relations import CoOccurrence
from stream.settings import Settings
from tests.unit.test_erasure import Worker, click


def _obs(offset: int, partition: int = 0, item: str = "i1", topic: str = "clicks") -> Observation:
    pairs = (("i0", item, 1.0),)
    return Observation((topic, partition, offset), (item,), (), 1.0, topic, offset, "", pairs)


def _decoded(records: list[tuple[bytes, bytes]]) -> list[tuple[bytes, list[Observation]]]:
    return [(key, observations_from_bytes(value)) for key, value in records]


def test_one_record_per_source_partition_in_offset_order() -> None:
    shuffled = [_obs(5, 1), _obs(3, 0), _obs(4, 1), _obs(1, 0), _obs(2, 0, topic="orders")]
    records = _decoded(learned_records(shuffled))
    assert [key for key, _ in records] == [b"clicks:0", b"clicks:1", b"orders:0"]
    assert [[o.source for o in group] for _, group in records] == [
        [("clicks", 0, 1), ("clicks", 0, 3)],
        [("clicks", 1, 4), ("clicks", 1, 5)],
        [("orders", 0, 2)],
    ]
    assert [o for _, group in records for o in group] == sorted(shuffled, key=lambda o: o.source)


def test_a_group_of_one_and_group_size_one_write_the_older_format() -> None:
    """What a worker of the previous release reads, during a rolling upgrade."""
    lone = _obs(7)
    assert learned_records([lone]) == [(b"clicks:0", lone.to_bytes())]
    many = [_obs(i) for i in range(4)]
    assert learned_records(many, max_group=1) == [(b"clicks:0", o.to_bytes()) for o in many]
    assert Observation.from_bytes(learned_records([lone])[0][1]) == lone


def test_groups_are_cut_by_count_and_by_bytes() -> None:
    many = [_obs(i) for i in range(5)]
    assert [len(g) for _, g in _decoded(learned_records(many, max_group=2))] == [2, 2, 1]
    size = len(many[0].to_bytes())
    cut = _decoded(learned_records(many, max_group=64, max_bytes=3 * size))
    assert [len(g) for _, g in cut] == [2, 2, 1]  # 3 would pass max_bytes with the commas
    assert all(len(v) <= 3 * size + 16 for _, v in learned_records(many, 64, 3 * size))


def test_a_grouped_record_round_trips() -> None:
    many = [_obs(i, item=f"i{i % 3}") for i in range(10)]
    ((_, value),) = learned_records(many)
    assert orjson.loads(value)[GROUP][0] == orjson.loads(many[0].to_bytes())
    assert observations_from_bytes(value) == many


@pytest.mark.parametrize(
    "raw",
    [b"[1, 2]", b'{"g": 3}', b'{"g": [1]}', b'{"g": [{"s": null}]}', b"null", b"{"],
)
def test_a_record_that_is_no_observation_raises(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        observations_from_bytes(raw)


def _learner() -> Learner:
    catalog = Catalog()
    for i in range(5):
        catalog.upsert({"item_id": f"i{i}", "ts": 0})
    return Learner(catalog, CoOccurrence())


def _state(learner: Learner) -> tuple[list[float], int]:
    return learner.catalog.popularity[: len(learner.catalog)].tolist(), learner.applied


def test_grouped_and_single_records_teach_a_reader_the_same() -> None:
    many = [_obs(i, partition=i % 2, item=f"i{i % 4}") for i in range(12)]
    grouped, single = _learner(), _learner()
    for reader, records in ((grouped, learned_records(many)), (single, learned_records(many, 1))):
        for _, value in records:
            for obs in observations_from_bytes(value):
                reader.remote(obs)
        for _, value in records[:2]:  # a re-published record (after a crash): nothing again
            for obs in observations_from_bytes(value):
                reader.remote(obs)
    assert _state(grouped) == _state(single)
    assert grouped.applied == 12
    # the re-published copies were counted as duplicates: 12 in two groups, 2 alone
    assert (grouped.duplicates, single.duplicates) == (12, 2)


def test_the_own_echo_inside_a_group_is_skipped() -> None:
    learner = _learner()
    mine = [_obs(i) for i in range(3)]
    for obs in mine:
        assert learner.local(obs)
    ((_, value),) = learned_records([*mine, _obs(3)])
    applied = [learner.remote(obs) for obs in observations_from_bytes(value)]
    assert applied == [False, False, False, True]
    assert learner.catalog.popularity[learner.catalog.index["i1"]] == 4.0


def test_own_echoes_left_undecoded_leave_the_reader_as_decoding_them_would() -> None:
    """``own_echo`` skips decoding a worker's own observations; what it learns, the offsets
    it has seen and what stays pending are those of decoding every one (``remote``)."""
    mine = [_obs(i, partition=i % 2, item=f"i{i % 4}") for i in range(8)]
    theirs = [_obs(i, partition=2, item="i2") for i in range(3)]
    records = learned_records([*mine[:6], *theirs, *mine[:2]])  # mine[:2] re-published
    decoding, skipping = _learner(), _learner()
    for reader in (decoding, skipping):
        for obs in mine:
            reader.local(obs)
    for _, value in records:
        for obs in observations_from_bytes(value):
            decoding.remote(obs)
        for obs in observations_from_bytes(value, skipping.own_echo):
            assert (obs.source is not None and obs.source[1] == 2) or obs in mine[:2]
            skipping.remote(obs)
    assert _state(decoding) == _state(skipping)
    assert (decoding.seen, decoding.pending) == (skipping.seen, skipping.pending)
    assert decoding.duplicates == skipping.duplicates == 2
    assert skipping.pending == {"clicks:0": {6}, "clicks:1": {7}}  # not read back yet


@pytest.mark.parametrize("source", [None, [], ["clicks", 0], "clicks:0:1", ["clicks", 0, 99]])
def test_a_source_that_is_no_pending_echo_is_decoded(source: object) -> None:
    learner = _learner()
    learner.local(_obs(1))
    assert not learner.own_echo(source)
    assert learner.pending == {"clicks:0": {1}}


def test_a_worker_batch_sends_one_learned_record_per_source_partition() -> None:
    worker = Worker()
    worker.batch(*(click(i, f"i{i % 5}", user=f"u{i % 3}") for i in range(9)))
    learned = [value for topic, value in worker.sent if topic == "learned"]
    assert len(learned) == 1  # 9 clicks of partition 0
    observations = [o for value in learned for o in observations_from_bytes(value or b"")]
    assert [o.source for o in observations] == [("clicks", 0, i) for i in range(9)]


def test_the_group_size_comes_from_the_environment() -> None:
    assert Settings.from_env({}).learned_group_max == 64
    assert Settings.from_env({"RECSTREAM_LEARNED_GROUP_MAX": "1"}).learned_group_max == 1
    with pytest.raises(ValueError, match="RECSTREAM_LEARNED_GROUP_MAX"):
        Settings.from_env({"RECSTREAM_LEARNED_GROUP_MAX": "0"})
