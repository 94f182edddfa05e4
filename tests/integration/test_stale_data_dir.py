"""A worker whose data dir outlived its topics (a reset cluster, or another deployment's data dir)
serves the new topics' events instead of taking them for replays of the old ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import new_deployment
from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.integration


def test_a_kept_data_dir_against_recreated_topics_is_restored_not_trusted(
    broker: Any, tmp_path: Path
) -> None:
    old = new_deployment(broker, tmp_path)
    old.produce([("catalog", m) for m in CATALOG])
    worker = old.worker("w").start()
    try:
        worker.wait_ready()
        for n in range(3):  # the user's profile holds input offsets up to 2 on their partition
            first = send_and_wait(old, [event("clicks", "u-stale", item_id=f"sku-{n + 2}")])
    finally:
        assert worker.stop() == 0
    assert first["state_version"] >= 2

    # new topics (a new prefix: as after a cluster reset), the same data dir (same base, name)
    new = new_deployment(broker, tmp_path)
    new.produce([("catalog", m) for m in CATALOG])
    again = new.worker("w").start()
    try:
        again.wait_ready()
        # the click is offset 0 of its partition: the old profile would have taken it for a
        # replay (offsets up to 2 applied) and answered nothing
        answer = send_and_wait(new, [event("clicks", "u-stale", item_id="sku-9")])
        assert answer["state_version"] == 1  # a new profile, not the old one's history
        log = again.log()
        assert "dropping the partition's local state" in log
    finally:
        assert again.stop() == 0
