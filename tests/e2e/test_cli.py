"""The CLI as a user runs it (issue 2): demo on embedded defaults, recs --explain, exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pipeline import CATALOG, event, send_and_wait

pytestmark = pytest.mark.e2e


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_shows_live_recommendations_from_real_data(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env["RECSTREAM_DATA_DIR"] = str(tmp_path / "data")
    done = run_cli("demo", "--seconds", "20", "--households", "30", "--speed", "400000", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "starting the bundled broker" in out
    summaries = re.findall(r"lists received ([\d,]+) · latency p50 (\d+) ms", out)
    assert summaries, out[-2000:]
    assert int(summaries[-1][0].replace(",", "")) > 20
    assert "← orders" in out and "why #1:" in out
    # the demo stops what it starts: its broker port is closed again
    port = re.search(r"on 127\.0\.0\.1:(\d+)", out)
    assert port is not None
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", int(port.group(1)))) != 0


def test_recs_explain_and_exit_codes(deployment: Any) -> None:
    deployment.produce([("catalog", m) for m in CATALOG])
    worker = deployment.worker("cli").start()
    worker.wait_ready()
    rec = send_and_wait(deployment, [event("clicks", "u-cli", item_id="sku-8")])
    done = run_cli("recs", "u-cli", "--explain", env=deployment.env)
    assert done.returncode == 0, done.stderr
    first = rec["items"][0]
    assert first["item_id"] in done.stdout and first["reasons"][0] in done.stdout
    # the breakdown is ranked from the live state (stored profile + replayed catalog): the
    # same first item, with its signals
    live = done.stdout.split("score breakdown from the live state: u-cli", 1)[1]
    assert re.search(rf"^\s+1\. {re.escape(first['item_id'])}\s", live, re.M), live
    assert " x factor " in live and re.search(r"^\s+\w+\s+-?\d+\.\d+ x ", live, re.M)
    missing = run_cli("recs", "nobody-here", "--timeout", "2", env=deployment.env)
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1 and "nobody-here" in missing.stderr
    bad = run_cli("recs", "u-cli", env=dict(deployment.env, RECSTREAM_PARTITIONS="many"))
    assert bad.returncode == 1 and "RECSTREAM_PARTITIONS must be an integer" in bad.stderr
