"""Every long-running command stops what it started on SIGTERM and on SIGINT, within 10 s.

Supervisors (systemd, Docker, Kubernetes) send SIGTERM; a person presses Ctrl-C (SIGINT). Either
way no broker, worker or helper process may be left holding ports or files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stream.broker import free_port, port_open
from stream.readiness import SERVING_MARK

pytestmark = pytest.mark.e2e


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (read from /proc, no extra dependency)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


def _start(
    args: list[str], env: dict[str, str], log: Path, sigint_ignored: bool = False
) -> subprocess.Popen[bytes]:
    """``sigint_ignored``: start it as a shell starts a background job (``cmd &``), which
    ignores SIGINT; SIGTERM must still stop it. Otherwise SIGINT is reset to its default, as
    for a command in a terminal (Ctrl-C), whatever the test runner itself was started with."""

    def set_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.SIG_DFL)

    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stream.cli", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=set_sigint,
        )


def _wait_for(condition: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:.0f}s; log:\n{log.read_text()[-3000:]}")


def _stop_and_check(process: subprocess.Popen[bytes], sig: int, log: Path) -> None:
    descendants = _children(process.pid)
    started = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        for pid in descendants:  # children in sessions of their own: do not leak them either
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        tail = log.read_text()[-3000:]
        raise AssertionError(f"not stopped within 10 s by {sig}; log:\n{tail}") from None
    left = [pid for pid in descendants if _alive(pid)]
    names = {pid: _cmdline(pid) for pid in left}
    for pid in left:  # do not leak them into the rest of the suite, then fail
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left after signal {sig}: {names}"
    took = time.monotonic() - started
    print(f"{' '.join(map(str, process.args[3:5]))}: stopped by signal {sig} in {took:.1f}s")
    assert took < 10  # the contract (module docstring), not a guess of this machine's speed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_broker_command_stops_its_broker(sig: int, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "broker.log"
    process = _start(["broker", "--port", str(port)], dict(os.environ), log)
    _wait_for(lambda: port_open(port), 20, "broker listening", log)
    assert _children(process.pid), "the broker command should run Tansu as a child"
    _stop_and_check(process, sig, log)
    assert not port_open(port), "the broker port is still held"


def test_a_background_job_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "broker.log"
    process = _start(["broker", "--port", str(port)], dict(os.environ), log, sigint_ignored=True)
    _wait_for(lambda: port_open(port), 20, "broker listening", log)
    _stop_and_check(process, signal.SIGTERM, log)
    assert not port_open(port), "the broker port is still held"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_stops_cleanly(sig: int, deployment: Any, tmp_path: Path) -> None:
    worker = deployment.worker(f"stop{sig}")
    worker.start()
    worker.wait_ready()
    assert worker.process is not None
    _stop_and_check(worker.process, sig, worker.log_path)
    assert worker.process.returncode == 0, worker.log()[-2000:]


def test_worker_stopped_while_preparing_its_engine_exits_cleanly(
    deployment: Any, tmp_path: Path
) -> None:
    """The engine is prepared while Faust joins (``stream.lifecycle``): a SIGTERM in that
    window closes the parts being prepared, and must still end in exit 0, not the fatal exit
    70. (The unit tests in test_lifecycle.py pin the two paths that keep it so.)"""
    worker = deployment.worker("stopprep")
    worker.start()
    assert worker.process is not None
    deadline = time.monotonic() + 90
    while "catalog replica ready" not in worker.log():  # logged as the preparation goes on
        assert worker.process.poll() is None, worker.log()[-2000:]
        assert time.monotonic() < deadline, worker.log()[-2000:]
        time.sleep(0.02)
    early = SERVING_MARK not in worker.log()
    _stop_and_check(worker.process, signal.SIGTERM, worker.log_path)
    assert early, "the engine was ready before the stop: this run missed what it tests"
    assert worker.process.returncode == 0, worker.log()[-2000:]
    assert "FATAL" not in worker.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_demo_stops_broker_and_worker(sig: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env["RECSTREAM_DATA_DIR"] = str(tmp_path / "data")
    log = tmp_path / "demo.log"
    process = _start(["demo", "--households", "20", "--speed", "20000"], env, log)
    _wait_for(lambda: "lists received" in log.read_text(), 120, "demo serving lists", log)
    assert len(_children(process.pid)) >= 2, "the demo should run a broker and a worker"
    _stop_and_check(process, sig, log)


def test_replay_stops_on_sigterm(deployment: Any, tmp_path: Path) -> None:
    log = tmp_path / "replay.log"
    process = _start(
        ["replay", "movielens", "--rate", "50", "--max-users", "20"], deployment.env, log
    )
    _wait_for(lambda: "msg/s" in log.read_text(), 60, "replay progress", log)
    _stop_and_check(process, signal.SIGTERM, log)  # may land in the catalog or the events phase
    assert process.returncode == 130, log.read_text()[-2000:]
    assert "interrupted" in log.read_text()


def test_replay_interrupted_while_publishing_the_catalog_stops_there(
    deployment: Any, tmp_path: Path
) -> None:
    """A stop during the catalog phase must not go on to replay the events."""
    log = tmp_path / "replay-catalog.log"
    process = _start(["replay", "completejourney", "--max-users", "30"], deployment.env, log)
    _wait_for(lambda: "msg/s" in log.read_text(), 120, "catalog progress", log)
    _stop_and_check(process, signal.SIGTERM, log)
    assert process.returncode == 130, log.read_text()[-2000:]


@pytest.mark.parametrize(
    ("sig", "own_broker"), [(signal.SIGTERM, True), (signal.SIGINT, False)], ids=["term", "int"]
)
def test_eval_live_stops_its_worker_and_broker(
    sig: int, own_broker: bool, deployment: Any, tmp_path: Path
) -> None:
    """Stopped mid-replay: the worker it spawned (and the broker, when it started one) go too."""
    env = dict(deployment.env, RECSTREAM_DATA_DIR=str(tmp_path / "data"))
    if own_broker:
        env.pop("RECSTREAM_KAFKA_BOOTSTRAP")
    log = tmp_path / "eval-live.log"
    args = ["eval", "--dataset", "movielens", "--max-users", "12", "--live", "--live-rate", "20"]
    process = _start([*args, "--out", str(tmp_path / "live.json")], env, log)
    _wait_for(lambda: "msg/s" in log.read_text(), 180, "live replay under way", log)
    assert len(_children(process.pid)) >= (2 if own_broker else 1), "worker (and broker) expected"
    _stop_and_check(process, sig, log)
    assert process.returncode != 0, "an interrupted evaluation must not look successful"
    assert not (tmp_path / "live.json").exists(), "no report from an interrupted run"
