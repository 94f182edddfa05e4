"""The test suite itself stops what it started when it is told to stop (SIGTERM or SIGHUP):
a CI runner cancelling a job, or a person's terminal closing, must not leave brokers or
workers behind, whether the signal reaches every pytest process or the controller alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.signals_teardown import children

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

NESTED = """
import os, time
from pathlib import Path

def test_holds_a_broker(broker):
    # written whole, then renamed: the outer test must never read a half-written file
    path = Path(os.environ["BROKER_PID_FILE"])
    part = path.with_suffix(".part")
    part.write_text(str(broker.process.pid))
    os.replace(part, path)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("signum", "whole_group"), [(signal.SIGTERM, False), (signal.SIGHUP, True)]
)
def test_a_stopped_suite_stops_its_broker(
    tmp_path: Path, signum: signal.Signals, whole_group: bool
) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_nested.py").write_text(NESTED)
    pid_file = tmp_path / "broker.pid"
    env = os.environ | {"PYTHONPATH": str(ROOT), "BROKER_PID_FILE": str(pid_file)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", "."]
    suite = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    broker = 0
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            assert suite.poll() is None, suite.stdout.read().decode() if suite.stdout else ""
            time.sleep(0.2)
        broker = int(pid_file.read_text())
        assert _alive(broker) and children(suite.pid)  # the xdist workers
        if whole_group:
            os.killpg(suite.pid, signum)
        else:
            os.kill(suite.pid, signum)
        suite.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _alive(broker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(broker), "the suite left its broker running"
    finally:
        if suite.poll() is None:
            os.killpg(suite.pid, signal.SIGKILL)
            suite.wait()
        if broker and _alive(broker):  # its own session: a failed run must not leave it
            os.kill(broker, signal.SIGKILL)
