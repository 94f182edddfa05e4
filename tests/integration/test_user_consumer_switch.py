"""A deployment moving its user topics from the Faust agent to the bare consumer group
(``RECSTREAM_USER_CONSUMER``) goes on where the agent's group left off: it neither re-reads
the topics' retention nor skips what arrived while no worker ran."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.integration


def _consumed(worker: Any, topic: str) -> float:
    return worker.metrics().get(f'recstream_events_consumed_total{{topic="{topic}"}}', 0.0)


def test_the_user_group_starts_where_the_faust_agent_left_off(deployment: Any) -> None:
    deployment.produce([("catalog", m) for m in CATALOG])
    old = deployment.worker("w", RECSTREAM_USER_CONSUMER="faust").start()
    old.wait_ready()
    clicks = [event("clicks", f"u{i % 4}", item_id=f"sku-{i}") for i in range(12)]
    send_and_wait(deployment, clicks)
    assert _consumed(old, "clicks") == 12
    assert old.stop() == 0  # (Faust commits its offsets as it stops)

    deployment.produce([event("clicks", "u1", item_id="sku-40")])  # while no worker runs
    new = deployment.worker("w", RECSTREAM_USER_CONSUMER="aiokafka").start()
    new.wait_ready()
    answer = send_and_wait(deployment, [event("clicks", "u2", item_id="sku-41")])
    assert answer["user_id"] == "u2"
    assert _consumed(new, "clicks") == 2  # the one sent in between and the last, no more
    assert new.stop() == 0
