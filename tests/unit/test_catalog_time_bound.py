"""A catalog entry dated far ahead of its record: its freshness counts from the record's time.

An item's first ``ts`` is its freshness date, and freshness stays at 1 until that date; one
entry dated a year ahead would otherwise rank as "new" for a year on every worker."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from stream.adapters.replica import CatalogReplica
from stream.adapters.validation import Validators
from stream.domain.catalog import Catalog
from stream.domain.context_signals import freshness
from stream.domain.item_feed import bounded_time
from stream.settings import Settings

HOUR = 3_600_000
PUBLISHED = 1_767_225_600_000  # the record's timestamp


def entry(item_id: str, ts: int) -> dict[str, Any]:
    return {"event_id": f"c-{item_id}", "item_id": item_id, "ts": ts, "title": item_id}


def test_a_ts_within_the_limit_is_kept_as_sent() -> None:
    for ts in (PUBLISHED - 400 * 24 * HOUR, PUBLISHED, PUBLISHED + HOUR):
        message = entry("a", ts)
        assert bounded_time(message, PUBLISHED, HOUR) is message


def test_a_ts_past_the_limit_takes_the_record_time_on_a_copy() -> None:
    message = entry("a", PUBLISHED + HOUR + 1)
    bounded = bounded_time(message, PUBLISHED, HOUR)
    assert bounded == {**message, "ts": PUBLISHED}
    assert message["ts"] == PUBLISHED + HOUR + 1  # the caller's message is not changed


@pytest.mark.parametrize("published", [None, 0, -1])
def test_no_record_time_no_check(published: int | None) -> None:
    message = entry("a", PUBLISHED * 1000)  # microseconds
    assert bounded_time(message, published, HOUR) is message


def test_a_limit_of_zero_turns_it_off() -> None:
    message = entry("a", PUBLISHED * 1000)
    assert bounded_time(message, PUBLISHED, 0) is message


def replica(limit_ms: int) -> CatalogReplica:
    settings = Settings.from_env({"RECSTREAM_MAX_EVENT_AHEAD_MS": str(limit_ms)})
    return CatalogReplica(settings, Catalog(), Validators(names=("catalog", "stock")))


def test_the_replica_applies_a_future_dated_entry_with_its_record_time() -> None:
    r = replica(HOUR)
    year_ahead = PUBLISHED + 365 * 24 * HOUR
    asyncio.run(r._apply("catalog", orjson.dumps(entry("ahead", year_ahead)), PUBLISHED))
    asyncio.run(r._apply("catalog", orjson.dumps(entry("fine", PUBLISHED - HOUR)), PUBLISHED))
    catalog = r.catalog
    ahead, fine = catalog.index["ahead"], catalog.index["fine"]
    assert int(catalog.first_seen[ahead]) == PUBLISHED  # the item itself is applied
    assert int(catalog.first_seen[fine]) == PUBLISHED - HOUR
    assert (r.applied, r.skipped, r.time_bounded) == (2, 0, 1)
    # a month later the future-dated item is no longer "new": freshness decays from then
    month_later = float(PUBLISHED + 30 * 24 * HOUR)
    fresh = freshness(catalog, np.array([ahead, fine]), month_later, 7 * 24 * HOUR)
    assert fresh[0] < 0.05 and fresh[0] == pytest.approx(float(np.exp(-30 / 7)), rel=1e-9)


def test_the_replica_with_the_check_off_keeps_the_sent_time() -> None:
    r = replica(0)
    year_ahead = PUBLISHED + 365 * 24 * HOUR
    asyncio.run(r._apply("catalog", orjson.dumps(entry("ahead", year_ahead)), PUBLISHED))
    assert int(r.catalog.first_seen[r.catalog.index["ahead"]]) == year_ahead
    assert r.time_bounded == 0


def test_the_bound_is_the_same_on_every_replay() -> None:
    """Two replicas reading the same records (a restart re-reads `catalog` from the start)
    give the item the same first time, whatever their clocks say."""
    raw = orjson.dumps(entry("ahead", PUBLISHED + 48 * HOUR))
    firsts = []
    for _ in range(2):
        r = replica(HOUR)
        asyncio.run(r._apply("catalog", raw, PUBLISHED))
        firsts.append(int(r.catalog.first_seen[r.catalog.index["ahead"]]))
    assert firsts == [PUBLISHED, PUBLISHED]


def test_the_replica_reads_the_bound_from_the_record_it_was_given() -> None:
    """What the follower hands over (an aiokafka record) is where the record time comes from."""
    r = replica(HOUR)
    raw = orjson.dumps(entry("ahead", PUBLISHED + 48 * HOUR))
    record = ConsumerRecord(
        topic=r.settings.topic("catalog"), partition=0, offset=0, timestamp=PUBLISHED,
        timestamp_type=0, key=b"ahead", value=raw, checksum=None,
        serialized_key_size=5, serialized_value_size=len(raw), headers=(),
    )  # fmt: skip
    asyncio.run(r._on_item(record.topic, record))
    assert int(r.catalog.first_seen[r.catalog.index["ahead"]]) == PUBLISHED


def stock(item_id: str, available: int, ts: int, n: int) -> bytes:
    return orjson.dumps({"event_id": f"s{n}", "item_id": item_id, "ts": ts, "available": available})


def test_a_stock_level_stamped_hours_ahead_does_not_outrank_the_next_ones() -> None:
    """Stock is ordered by ts (``ItemFeed``); a clock hours ahead must not freeze the item's
    level until then: its ts is its record's time, so the next level, published later, wins."""
    r = replica(HOUR)
    asyncio.run(r._apply("catalog", orjson.dumps(entry("a", PUBLISHED)), PUBLISHED))
    idx = r.catalog.index["a"]
    asyncio.run(r._apply("stock", stock("a", 0, PUBLISHED + 5 * HOUR, 1), PUBLISHED))
    assert int(r.catalog.available[idx]) == 0
    asyncio.run(r._apply("stock", stock("a", 4, PUBLISHED + 1000, 2), PUBLISHED + 1000))
    assert int(r.catalog.available[idx]) == 4 and r.stale_stock == 0
    # an older level arriving late is skipped and counted
    asyncio.run(r._apply("stock", stock("a", 0, PUBLISHED + 500, 3), PUBLISHED + 2000))
    assert int(r.catalog.available[idx]) == 4 and r.stale_stock == 1
    assert r.time_bounded == 0  # (that count is of catalog entries)
