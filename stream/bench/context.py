"""Where the benchmark's children run: one broker, one run folder, one environment per role.

Each measurement gets its own consumer group and state (``RECSTREAM_APP_ID``, data dir) and,
through ``fresh_contexts``, a broker of its own pre-filled with the same backlog: every figure
of a run is taken on the same workload from the same broker state, whatever ran before it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from stream.bench.supervisor import Supervisor
from stream.broker import free_port
from stream.settings import Settings


def say(text: str) -> None:
    """One progress line per step (stderr, so ``--json -`` style pipes stay clean)."""
    print(text, file=sys.stderr, flush=True)


@dataclass
class BenchContext:
    supervisor: Supervisor
    bootstrap: str
    broker_pid: int
    run_dir: Path
    #: appended to every role's data dir and log: a measurement repeated in the same run (the
    #: throughput rounds) starts from no state, as its first time did (a Faust table's offsets
    #: from an earlier broker crashed the naive agent), and keeps its own log
    tag: str = ""

    def env(self, prefix: str, role: str, **extra: str) -> dict[str, str]:
        """Environment of one child: this broker, a topic prefix, its own data dir and port.

        The Pfeed lookup is shared, as a deployment shares it (``RECSTREAM_LOOKUP_DIR``): the
        first worker of a run builds and publishes it, the others load it (the catalog is the
        same for every prefix). That saves little start-up time here (5,000 items, a slow
        machine: loads of 4.4-5.3 s against a build of 5.7 s) but starts every worker of a run
        from the same lookup, as in production."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
        env.update(
            RECSTREAM_KAFKA_BOOTSTRAP=self.bootstrap,
            RECSTREAM_TOPIC_PREFIX=prefix,
            RECSTREAM_DATA_DIR=str(self.run_dir / "data" / f"{role}{self.tag}"),
            RECSTREAM_LOOKUP_DIR=str(self.run_dir / "lookup"),
            RECSTREAM_METRICS_PORT=str(free_port()),
            RECSTREAM_APP_ID=f"bench-{role}",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def settings(self, prefix: str) -> Settings:
        return Settings.from_env(self.env(prefix, "harness"))

    def log(self, role: str) -> Path:
        path = self.run_dir / "logs" / f"{role}{self.tag}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


#: ``fresh(name)``: a context on a broker of its own (``Supervisor.fresh_broker``), prepared
Fresh = Callable[[str], AbstractContextManager[BenchContext]]


def fresh_contexts(
    supervisor: Supervisor, run_dir: Path, prepare: Callable[[BenchContext], None] | None = None
) -> Fresh:
    """Contexts on a new broker each (``prepare``, e.g. a pre-fill, runs on it first): every
    measurement starts from the same broker state whatever ran before it."""

    @contextlib.contextmanager
    def fresh(name: str) -> Iterator[BenchContext]:
        say(f"[broker] a fresh bundled broker for {name} ...")
        with supervisor.fresh_broker(run_dir / f"broker-{name}.log") as broker:
            ctx = BenchContext(supervisor, broker.bootstrap, broker.process.pid, run_dir)
            if prepare is not None:
                prepare(ctx)
            yield ctx

    return fresh
