"""A catalog entry dated a year ahead, through a real broker: the replica dates the item from
its record's timestamp, and a second replica reading the topic again dates it alike."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.replica import CatalogReplica
from stream.adapters.validation import Validators
from stream.domain.catalog import Catalog
from tests.conftest import new_deployment

pytestmark = pytest.mark.integration

DAY = 24 * 3_600_000


def test_a_future_dated_entry_is_dated_from_its_record(broker: Any, tmp_path: Path) -> None:
    dep = new_deployment(broker, tmp_path)
    sent = int(time.time() * 1000)
    year_ahead, yesterday = sent + 365 * DAY, sent - DAY
    dep.produce(
        [
            ("catalog", {"event_id": "c1", "item_id": "ahead", "ts": year_ahead}),
            ("catalog", {"event_id": "c2", "item_id": "fine", "ts": yesterday}),
        ]
    )
    received = int(time.time() * 1000)

    async def read() -> tuple[dict[str, int], int]:
        replica = CatalogReplica(dep.settings, Catalog(), Validators())
        await replica.start()
        try:
            assert await replica.items.caught_up(timeout=30.0)
        finally:
            await replica.stop()
        catalog = replica.catalog
        firsts = {i: int(catalog.first_seen[catalog.index[i]]) for i in ("ahead", "fine")}
        return firsts, replica.time_bounded

    first, bounded = asyncio.run(read())
    assert first["fine"] == yesterday  # within the limit: as sent
    assert sent <= first["ahead"] <= received  # the record's (send-time) timestamp
    assert bounded == 1
    again, _ = asyncio.run(read())  # a restart reads the topic from the beginning
    assert again == first
