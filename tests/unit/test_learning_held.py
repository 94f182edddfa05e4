"""``Engine.learning_held``: a batch's observations reach the shared read models once, after
its rankings, exactly as if each had been applied as it was made (the worker's batches); a
failed batch applies none; and the pipeline holds learning around every batch."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.domain.relations import CoOccurrence
from tests.unit.test_erasure import Worker, click

T0 = 1_700_000_000_000


def engine() -> Engine:
    catalog = Catalog()
    for i in range(12):
        catalog.upsert({"item_id": f"i{i}", "title": f"Item {i}", "category": f"c{i % 3}"})
    return Engine(catalog=catalog, ranking=RankingProfile())


def event(user: str, n: int, topic: str = "clicks", items: tuple[str, ...] = ()) -> UserEvent:
    ids = items or (f"i{n % 12}",)
    action = "add" if topic == "carts" else None
    return UserEvent(
        topic, f"e{user}{n}", user, T0 + 1000 * n, ids, action=action, source=(topic, 0, n)
    )


BURSTS = [
    ("u1", [event("u1", 1), event("u1", 2), event("u1", 3)]),
    ("u2", [event("u2", 4), event("u2", 5, "orders", ("i5", "i6"))]),
    ("u1", [event("u1", 6), event("u1", 7, "carts")]),
    ("u3", [event("u3", 8, "orders", ("i1", "i2", "i3"))]),
]


def shared(e: Engine) -> tuple[object, ...]:
    assert isinstance(e.relations, CoOccurrence)
    n = len(e.catalog)
    return (
        e.catalog.popularity[:n].tolist(),
        e.relations.counts,
        e.relations.pairs,
        e.learner.applied,
        e.trending.values(np.arange(n, dtype=np.int64)).tolist(),
    )


def test_held_learning_ends_where_learning_at_once_ends() -> None:
    at_once, held = engine(), engine()
    start = shared(held)
    once_states: dict[str, UserProfile] = {}
    held_states: dict[str, UserProfile] = {}
    with held.learning_held():
        for user, events in BURSTS:
            r1 = at_once.step(once_states.get(user), user, events)
            r2 = held.step(held_states.get(user), user, events)
            once_states[user], held_states[user] = r1.state, r2.state
            assert r1.observations and r1.observations == r2.observations  # learned alike
            assert shared(held) == start  # nothing applied inside the block
    assert held.learner.applied == at_once.learner.applied > 0
    assert shared(held) == shared(at_once)
    assert {u: p.to_dict() for u, p in held_states.items()} == {
        u: {**p.to_dict(), "li": held_states[u].last_items} for u, p in once_states.items()
    }


def test_a_batch_that_raises_applies_nothing_and_later_steps_learn_at_once() -> None:
    e = engine()
    start = shared(e)
    with pytest.raises(ValueError, match="boom"), e.learning_held():
        e.step(None, "u1", [event("u1", 1), event("u1", 2)])
        raise ValueError("boom")
    assert shared(e) == start
    e.step(None, "u1", [event("u1", 1), event("u1", 2)])
    assert shared(e) != start


def test_learning_cannot_be_held_twice() -> None:
    e = engine()
    with e.learning_held(), pytest.raises(RuntimeError, match="already held"), e.learning_held():
        pass
    assert e._held is None  # the outer block ended normally


def test_the_pipeline_applies_a_batch_learning_after_it() -> None:
    w = Worker()
    w.batch(click(1, "i1"), click(2, "i2"), click(3, "i3", user="u2"), click(4, "i1", user="u2"))
    learner = w.engine.learner
    assert learner.applied == 4 and w.engine._held is None
    pop = w.engine.catalog.popularity
    idx = w.engine.catalog.index
    assert pop[idx["i1"]] > 0 and pop[idx["i3"]] > 0
