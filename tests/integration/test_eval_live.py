"""`recstream eval --live` on a small real slice through a real broker and worker (issue 3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.integration


def test_eval_live_agrees_with_in_process(broker: Any, tmp_path: Path) -> None:
    env = dict(
        os.environ,
        RECSTREAM_KAFKA_BOOTSTRAP=broker.bootstrap,
        RECSTREAM_TOPIC_PREFIX="evl-",
        RECSTREAM_DATA_DIR=str(tmp_path),
    )
    env.pop("RECSTREAM_QDRANT_URL", None)
    out = tmp_path / "ml-live.json"
    done = run_cli(
        "eval",
        "--dataset",
        "movielens",
        "--max-users",
        "12",
        "--live",
        "--live-rate",
        "60",
        "--out",
        str(out),
        env=env,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = orjson.loads(out.read_bytes())
    live = report["live"]
    assert live["agrees"] is True
    assert live["purchases_compared"] >= 100
    # every user's last event is answered by a list (a worker may fold a user's close events
    # into one list, but that list answers the last of them) ...
    assert live["users"] == 12
    assert live["users_last_event_answered"] == live["users"]
    # ... and paced replay: many events got their own list (a worker slowed by a busy machine
    # folds more, and batches grow with its backlog: 0.69-0.86 seen with other jobs running,
    # above 0.9 on a quiet one; folding everything would leave one list per burst) ...
    assert live["lists_received"] >= 0.5 * report["data"]["events"]
    # ... and many lists are exactly the in-process ones (52-66 % seen at this size; the rest
    # differ because topics are consumed by separate agents, so a user's click and order
    # produced milliseconds apart may be applied in either order)
    assert live["identical_top_k_share"] > 0.3
    assert "agrees" in done.stdout
