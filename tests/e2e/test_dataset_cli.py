"""export → replay → eval on the generic dataset format, as a user runs it (issue 3)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.datasets import read_catalog, read_events
from stream.tools import TopicReader
from tests.conftest import new_deployment
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


def test_export_replay_and_eval_a_generic_folder(broker: Any, tmp_path: Path) -> None:
    folder = tmp_path / "ml-slice"
    done = run_cli("export", "movielens", str(folder), "--max-users", "8")
    assert done.returncode == 0, done.stderr
    catalog = list(read_catalog(folder))
    events = list(read_events(folder))
    assert len(catalog) == 1682 and events
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)

    dep = new_deployment(broker, tmp_path / "deploy")
    done = run_cli("replay", str(folder), "--rate", "2000", env=dep.env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"sent {len(events)}" in done.stdout

    async def count(topic: str) -> int:
        async with TopicReader(dep.settings, topic) as reader:
            idle = 0
            while idle < 5:
                idle = 0 if await reader.poll(100) else idle + 1
            return len(reader.messages)

    per_topic: dict[str, int] = {}
    for e in events:
        per_topic[e["topic"]] = per_topic.get(e["topic"], 0) + 1
    for topic, n in per_topic.items():
        assert asyncio.run(count(topic)) == n, topic

    out = tmp_path / "report.json"
    env = dict(os.environ)
    done = run_cli("eval", "--dataset", str(folder), "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = orjson.loads(out.read_bytes())
    assert report["data"]["events"] == len(events)
    assert {"popularity", "buy_again", "cooccurrence_frozen", "engine_realtime"} <= set(
        report["methods"]
    )
    for suffix in (".md", "-refresh.png", "-segments.png"):
        path = out.with_name(out.stem + suffix)
        assert path.stat().st_size > 0, path


def _events_under_way(stderr: Path) -> bool:
    """The second progress bar (events; the first is the catalog's, with another total) has
    counted some: the replay is past its catalog phase and sending events."""
    bars = re.findall(r"\b(\d+)/(\d+)\b", stderr.read_text(errors="replace"))
    return any(total != bars[0][1] and int(n) > 0 for n, total in bars)


def test_replay_stops_cleanly_on_ctrl_c(broker: Any, tmp_path: Path) -> None:
    dep = new_deployment(broker, tmp_path / "deploy")
    err_path = tmp_path / "replay.err"
    with open(err_path, "wb") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "replay", "movielens", "--max-users", "30",
             "--rate", "100"],
            env=dep.env,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
            # Ctrl-C in a terminal: SIGINT at its default, even under a runner started with it
            # ignored (a background job of a non-interactive shell)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    try:
        # catalog first, then events at 100 msg/s (~22 s for all 2,203): interrupt once events
        # flow. A fixed 6 s pause was the wait before: on a busy machine start-up and catalog
        # took longer, and the interrupt landed before anything was sent.
        deadline = time.monotonic() + 120
        while not _events_under_way(err_path):
            assert proc.poll() is None, err_path.read_text()[-2000:]
            assert time.monotonic() < deadline, err_path.read_text()[-2000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err_path.read_text(errors="replace")
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in out
    sent = int(out.split("sent ")[1].split(" ")[0].replace(",", ""))
    assert 0 < sent < 3000  # partial: 30 users hold ~3,000 ratings
