"""Every child process the benchmark starts is stopped by PID: at the end of its phase, on
SIGTERM / SIGINT, and at interpreter exit.

A benchmark that dies half-way must not leave a broker and four Faust workers eating the two
cores of a shared machine. Children run in their own process group (``start_new_session``) and
are stopped with the project's helpers (``stop_worker`` = SIGTERM to the group, SIGKILL after a
timeout); the supervisor only keeps the list and makes sure the stop happens.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from stream.broker import LocalBroker, start_broker
from stream.local_worker import stop_worker


class Supervisor:
    """Owns child processes; ``close()`` (idempotent) stops the ones still running, newest first."""

    def __init__(self) -> None:
        self._children: list[subprocess.Popen[bytes]] = []
        self._broker: LocalBroker | None = None
        self._previous: dict[int, Any] = {}
        self._closed = False

    def install(self) -> None:
        """Turn SIGTERM into SystemExit (so ``finally`` blocks run) and stop children at exit."""
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def broker(self, log_path: Path) -> LocalBroker:
        self._broker = start_broker(log_path=log_path)
        return self._broker

    @contextlib.contextmanager
    def fresh_broker(self, log_path: Path) -> Iterator[LocalBroker]:
        """A broker of its own for one measurement, stopped when the block ends.

        The bundled broker's cost per request grows with what it stores (a bare relay at 300
        events/s: 0.43-0.70 of a core and p99 29-50 ms on a fresh broker, 0.94-1.10 and
        108-247 ms once 100,000 more records were stored), so measurements that follow each
        other on one broker are not measured alike: the later ones pay for the earlier ones'
        records."""
        broker = self.broker(log_path)
        try:
            yield broker
        finally:
            broker.stop()
            if self._broker is broker:
                self._broker = None

    def spawn(
        self, argv: Sequence[str], env: dict[str, str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        """Start ``python argv…`` in its own process group, output appended to ``log_path``."""
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, *argv],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.adopt(process)

    def adopt(self, process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Track a child started elsewhere (e.g. by ``spawn_worker``)."""
        self._children.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
        code = stop_worker(process, timeout=timeout)
        with contextlib.suppress(ValueError):
            self._children.remove(process)
        return code

    @contextlib.contextmanager
    def running(self, *processes: subprocess.Popen[bytes]) -> Iterator[None]:
        """Stop these processes when the block ends, however it ends."""
        try:
            yield
        finally:
            for process in reversed(processes):
                self.stop(process)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for process in reversed(list(self._children)):
            self.stop(process, timeout=10.0)
        if self._broker is not None:
            self._broker.stop()
        for sig, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        atexit.unregister(self.close)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll until ``predicate()``; TimeoutError naming ``what`` otherwise."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")
