"""Learner: every observation applied once, whichever path (local, `learned` topic) comes first."""

from __future__ import annotations

from stream.domain.catalog import Catalog
from stream.domain.learning import Learner, Observation
from stream.domain.relations import CoOccurrence


def _learner() -> Learner:
    catalog = Catalog()
    for i in range(5):
        catalog.upsert({"item_id": f"i{i}", "ts": 0})
    return Learner(catalog, CoOccurrence())


def _obs(offset: int, item: str = "i1", partition: int = 0) -> Observation:
    return Observation(("clicks", partition, offset), (item,), ("i0",), 1.0)


def _pop(learner: Learner, item: str = "i1") -> float:
    return float(learner.catalog.popularity[learner.catalog.index[item]])


def test_own_echo_is_not_applied_twice() -> None:
    learner = _learner()
    assert learner.local(_obs(3))
    assert not learner.remote(_obs(3))  # the echo from `learned`
    assert _pop(learner) == 1.0


def test_republished_after_a_crash_is_skipped() -> None:
    learner = _learner()
    for offset in (1, 2, 3):
        assert learner.remote(_obs(offset))
    assert not learner.local(_obs(2))  # re-applied event after restart: already counted
    assert not learner.remote(_obs(2))  # and its re-published copy
    assert _pop(learner) == 3.0


def test_previous_owner_late_observation_still_counts() -> None:
    """After a rebalance the new owner may apply offset 11 before offset 10 of the previous
    owner arrives on the topic: 10 must still count, 11's echo must not."""
    learner = _learner()
    learner.remote(_obs(9))
    assert learner.local(_obs(11))
    assert learner.remote(_obs(10))
    assert not learner.remote(_obs(11))
    assert _pop(learner) == 3.0


def test_partitions_are_independent_and_offline_always_applies() -> None:
    learner = _learner()
    learner.remote(_obs(5, partition=0))
    assert learner.remote(_obs(1, partition=1))
    offline = Observation(None, ("i2",), (), 2.0)
    assert learner.local(offline) and learner.local(offline)
    assert _pop(learner, "i2") == 4.0


def test_observation_round_trip_and_relations() -> None:
    obs = Observation(("orders", 2, 7), ("i1", "i2"), ("i3",), 3.0)
    assert Observation.from_bytes(obs.to_bytes()) == obs
    learner = _learner()
    learner.remote(obs)
    related, _ = learner.relations.related(learner.catalog.index["i1"])
    assert learner.catalog.index["i3"] in related.tolist()


def test_repeat_propensities_travel_in_observations() -> None:
    """A worker reading `learned` counts re-buys exactly as the observing worker did."""
    from stream.domain.engine import Engine
    from stream.domain.events import UserEvent
    from stream.domain.learned import RepeatModel
    from stream.domain.profile import UserProfile

    catalog = Catalog()
    for i in range(3):
        catalog.upsert({"item_id": f"i{i}", "ts": 0, "attributes": {"category": ["c"]}})
    engine = Engine(catalog=catalog)
    events = [
        UserEvent("clicks", "e1", "u", 1_000, ("i1",), (1,), source=("clicks", 0, 1)),
        UserEvent("orders", "e2", "u", 2_000, ("i1", "i2"), (1, 1), source=("orders", 0, 1)),
        UserEvent("orders", "e3", "u", 3_000, ("i2",), (1,), source=("orders", 0, 2)),
    ]
    result = engine.step(UserProfile(user_id="u"), "u", events)
    assert [o.flags for o in result.observations] == ["n", "vn", "b"]
    reader = Learner(catalog, CoOccurrence(), RepeatModel())
    for obs in result.observations:
        assert reader.remote(Observation.from_bytes(obs.to_bytes()))
    assert reader.repeats is not None
    assert reader.repeats.to_dict() == engine.repeats.to_dict()
    assert engine.repeats.rebuy.shop.trials == 3 and engine.repeats.rebuy.shop.successes == 1
