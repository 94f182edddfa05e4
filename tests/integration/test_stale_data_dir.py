"""A worker whose data dir outlived its topics (a reset cluster) or belongs to another deployment
serves the new topics' events instead of taking them for replays of the old ones."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from stream.worker import prepare
from tests.conftest import Deployment, new_deployment
from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.integration


def _serve_a_user(dep: Deployment) -> None:
    """Three clicks of one user, one batch each: their profile holds input offsets up to 2."""
    dep.produce([("catalog", m) for m in CATALOG])
    worker = dep.worker("w").start()
    try:
        worker.wait_ready()
        for n in range(3):
            last = send_and_wait(dep, [event("clicks", "u-stale", item_id=f"sku-{n + 2}")])
    finally:
        assert worker.stop() == 0
    assert last["state_version"] >= 2


def _first_click_is_answered(dep: Deployment, mark: str) -> None:
    """The user's next click, offset 0 of its partition, gets a list from a new profile (the old
    profile would take it for a replay and answer nothing); the worker says what it dropped."""
    dep.produce([("catalog", m) for m in CATALOG])
    worker = dep.worker("w").start()
    try:
        worker.wait_ready()
        answer = send_and_wait(dep, [event("clicks", "u-stale", item_id="sku-9")])
        assert answer["state_version"] == 1  # not the old profile's history
        assert mark in worker.log()
    finally:
        assert worker.stop() == 0


async def _recreate_topics(dep: Deployment) -> None:
    """Delete every topic of the deployment and create them again (a cluster reset)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=dep.settings.kafka_bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(dep.settings.topic_prefix)]
        await admin.delete_topics(mine)
    finally:
        await admin.close()
    await prepare(dep.settings)


def test_topics_recreated_under_a_kept_data_dir(broker: Any, tmp_path: Path) -> None:
    dep = new_deployment(broker, tmp_path)
    _serve_a_user(dep)
    asyncio.run(_recreate_topics(dep))  # same names, new (empty) topics; the data dir is kept
    _first_click_is_answered(dep, "dropping the partition's local state")


def test_another_deployments_data_dir(broker: Any, tmp_path: Path) -> None:
    _serve_a_user(new_deployment(broker, tmp_path))
    # a new prefix (other topics) on the same data dir (same base and worker name)
    _first_click_is_answered(new_deployment(broker, tmp_path), "belongs to changelog")
