"""Shared fixtures: a real Tansu broker per session, real worker processes per module."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stream.broker import LocalBroker, free_port, start_broker
from stream.local_worker import scrape_metrics, spawn_worker, stop_worker, wait_ready
from stream.settings import Settings
from stream.tools import produce
from stream.worker import prepare
from tests import signals_teardown

_prefixes = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    """In every pytest process (the controller and each xdist worker): a signal stops what
    the tests started (``tests.signals_teardown``)."""
    signals_teardown.install()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    b = start_broker(log_path=log)
    try:
        yield b
    finally:
        b.stop()


@dataclass
class WorkerProcess:
    """A `recstream worker` subprocess, exactly as an operator runs it."""

    env: dict[str, str]
    log_path: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None
    log_offset: int = 0
    extra_args: list[str] = field(default_factory=list)

    def start(self) -> WorkerProcess:
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = spawn_worker(self.env, self.log_path, *self.extra_args)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[self.log_offset :]

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.process is not None
        wait_ready(self.process, self.log_path, timeout, since=self.log_offset)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        return 0 if self.process is None else stop_worker(self.process, sig, timeout)

    def metrics(self, attempts: int = 3) -> dict[str, float]:
        """Scrape /metrics into {'name{labels}': value}.

        A live worker gets ``attempts`` scrapes (2 s timeout each): on a starved machine (the
        worker's timers logged 2 s drifts while other jobs held both cores) one scrape can time
        out although nothing is wrong; an exited worker fails at once."""
        for _ in range(attempts):
            found = scrape_metrics(self.metrics_port)
            if found is not None:
                return found
            if self.process is not None and self.process.poll() is not None:
                break
        raise AssertionError(f"/metrics on port {self.metrics_port} did not answer")


@dataclass
class Deployment:
    """One isolated deployment on the shared broker: its own topic prefix and data dir."""

    settings: Settings
    env: dict[str, str]
    data_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def produce(
        self, messages: list[tuple[str, Any]], raw: bool = False, event_time: bool = False
    ) -> None:
        asyncio.run(produce(self.settings, messages, raw=raw, event_time=event_time))

    def worker(self, name: str = "w", **env: str) -> WorkerProcess:
        wenv = dict(
            self.env,
            RECSTREAM_DATA_DIR=str(self.data_dir / name),
            RECSTREAM_METRICS_PORT=str(free_port()),
            **env,
        )
        w = WorkerProcess(wenv, self.data_dir / f"{name}.log", int(wenv["RECSTREAM_METRICS_PORT"]))
        self.workers.append(w)
        return w


def new_deployment(broker: LocalBroker, base: Path, **env: str) -> Deployment:
    prefix = f"t{os.getpid()}x{next(_prefixes)}-"
    full_env = dict(
        os.environ,
        RECSTREAM_KAFKA_BOOTSTRAP=broker.bootstrap,
        RECSTREAM_TOPIC_PREFIX=prefix,
        RECSTREAM_DATA_DIR=str(base),
        **env,
    )
    full_env.pop("RECSTREAM_QDRANT_URL", None)
    full_env.update(env)
    settings = Settings.from_env(full_env)
    asyncio.run(prepare(settings))
    return Deployment(settings, full_env, base)


@pytest.fixture(scope="module")
def deployment(
    broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    d = new_deployment(broker, tmp_path_factory.mktemp("deploy"))
    try:
        yield d
    finally:
        for w in d.workers:
            w.stop()
