"""Fetch waits: the user path keeps its short wait; followers that carry no user's event to a
list wait longer, so an idle worker does not poll the broker every 20 ms on every topic."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream.adapters.follower import Follower, standalone_consumer
from stream.adapters.item_group import ItemGroup
from stream.adapters.replica import CatalogReplica
from stream.adapters.validation import get_validators
from stream.domain.catalog import Catalog
from stream.domain.learning import Learner
from stream.domain.relations import CoOccurrence
from stream.settings import Settings


async def _noop(topic: str, record: Any) -> None:
    return None


async def _noop_batch(records: Any) -> None:
    return None


def test_defaults_and_env() -> None:
    s = Settings.from_env({})
    assert (s.fetch_max_wait_ms, s.follower_fetch_max_wait_ms) == (20, 100)
    s = Settings.from_env(
        {"RECSTREAM_FETCH_MAX_WAIT_MS": "15", "RECSTREAM_FOLLOWER_FETCH_MAX_WAIT_MS": "250"}
    )
    assert (s.fetch_max_wait_ms, s.follower_fetch_max_wait_ms) == (15, 250)


@pytest.mark.parametrize(
    "name", ["RECSTREAM_FETCH_MAX_WAIT_MS", "RECSTREAM_FOLLOWER_FETCH_MAX_WAIT_MS"]
)
@pytest.mark.parametrize("raw", ["0", "-5", "soon"])
def test_a_wait_below_one_ms_is_refused(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: raw})


def test_followers_wait_longer_than_the_user_path_but_the_catalog_replica() -> None:
    s = Settings.from_env({"RECSTREAM_FETCH_MAX_WAIT_MS": "7"})
    assert Follower(s, ["t"], _noop, "f").wait_ms == 100
    assert Follower(s, ["t"], _noop, "f", wait_ms=3).wait_ms == 3
    replica = CatalogReplica(
        s, Catalog(), get_validators(), learner=Learner(Catalog(), CoOccurrence())
    )
    assert replica.items.wait_ms == 7  # a stock-out is on its way to users' lists
    assert replica.learned is not None and replica.learned.wait_ms == 100
    assert ItemGroup(s, ["catalog"], _noop_batch, 16).wait_ms == 100


def test_the_consumer_is_built_with_the_wait() -> None:
    s = Settings.from_env({})

    async def built() -> tuple[int, int]:
        default = standalone_consumer(s)
        given = standalone_consumer(s, wait_ms=123)
        return default._fetch_max_wait_ms, given._fetch_max_wait_ms

    assert asyncio.run(built()) == (20, 123)
