"""End-to-end latency under load: event produced → its recommendation consumed downstream.

Three processes besides the broker: the rate-controlled load generator (``loadgen``), the
system under test (a pipeline worker, or for the floor a bare ``relay``) and a downstream
consumer (``probe``). Loads are 25 / 50 / 75 % of the maximum rate measured by the throughput
phase; the floor runs at the same absolute rates on its own topics, and so does the Faust
floor (``faust_relay``: the worker's Kafka path, no engine), which tells what the pipeline's
latency owes to Faust and what to its own work.

Which answer belongs to an event: ``stream.bench.answers``.

Start-up is measured apart from the loads: before the first level the harness waits until the
worker's consumer lag is 0 (a fresh item group first reads the whole `catalog` topic; through
a Faust agent that took ~3 s for the quick catalog, during which user events waited) and runs a
warm-up level (``WARMUP_LEVEL_S`` at the lowest rate, its own events), reported as ``warmup``.
Before that, the 25 % level took every start-up cost and its p95 was the worker's start-up.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stream.adapters.topics import all_topics, ensure_topics
from stream.bench.answers import answered_latencies, read_probe, summarize
from stream.bench.capacity import CapacitySearch, search
from stream.bench.context import BenchContext, Fresh, say
from stream.bench.faust_relay import FAUST_RELAY_OUT
from stream.bench.levels import LOADS, Level, probe_level
from stream.bench.procstat import cpu_seconds, machine_cpu, machine_steal, stolen_share
from stream.bench.relay import RELAY_OUT
from stream.bench.supervisor import wait_for
from stream.bench.workload import WorkloadConfig
from stream.local_worker import scrape_metrics, spawn_worker, wait_ready
from stream.tools import replay_to

_T = TypeVar("_T")
#: after the last send, wait until the probe has seen nothing new for QUIET_S (lists still in
#: flight, or a backlog the worker is still draining), but at most SETTLE_MAX_S
QUIET_S = 1.0
SETTLE_MAX_S = 30.0
#: the longest wait for a fresh worker's start-up backlog
DRAIN_MAX_S = 60.0
_LAG = "recstream_consumer_lag_messages"
_QDRANT_CPU = "recstream_qdrant_cpu_seconds_total{"
#: worker-side view of a level, from its /metrics (a cross-check of the probe's figures)
_WORKER_SUMS = {
    "worker_mean_ms": "recstream_event_to_recommendation_seconds",
    "worker_delivery_ms": 'recstream_stage_seconds{stage="delivery"}',
    "worker_mean_batch": "recstream_batch_events",
}


@dataclass(frozen=True)
class FaustFloor:
    """Which loads the Faust floor runs at, and whether a warm-up level comes first."""

    loads: tuple[float, ...] = LOADS
    warmup: bool = True


def total_lag(sample: dict[str, float] | None) -> float | None:
    """Messages behind over every partition of the worker's consumer group (None: unknown)."""
    if sample is None:
        return None
    values = [v for k, v in sample.items() if k.startswith(_LAG + "{") and 'consumer="group"' in k]
    return sum(values) if values else None


def wait_drained(port: int, timeout: float = DRAIN_MAX_S) -> float:
    """Wait until the worker's group lag is 0 (its start-up backlog is processed and committed);
    returns the seconds waited. A worker still behind after ``timeout`` is measured anyway."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if total_lag(scrape_metrics(port, [_LAG])) == 0:
            break
        time.sleep(0.2)
    return round(time.monotonic() - started, 2)


def _settle(probe_log: Path) -> None:
    deadline = time.monotonic() + SETTLE_MAX_S
    size, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = probe_log.stat().st_size if probe_log.exists() else 0
        if now_size != size:
            size, quiet_since = now_size, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            return
        time.sleep(0.1)


def _worker_view(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, Any]:
    """Mean worker-reported latency (broker receive → emit) and batch size during a level."""
    if before is None or after is None:
        return {}
    out: dict[str, Any] = {}
    for key, series in _WORKER_SUMS.items():
        metric, brace, labels = series.partition("{")
        count_key, sum_key = f"{metric}_count{brace}{labels}", f"{metric}_sum{brace}{labels}"
        count = after.get(count_key, 0.0) - before.get(count_key, 0.0)
        total = after.get(sum_key, 0.0) - before.get(sum_key, 0.0)
        if count > 0:
            scale = 1000.0 if key.endswith("_ms") else 1.0
            out[key] = round(total / count * scale, 2)
    return out


def qdrant_share(
    before: dict[str, float] | None, after: dict[str, float] | None, worker_cpu_s: float
) -> dict[str, float]:
    """The Qdrant serving copy's share of the worker's CPU over a level: building user points
    on the event loop plus the writer thread's sink calls (``recstream_qdrant_cpu_seconds``),
    over the worker process's CPU time (issue 7 asks for under 10 %)."""
    if before is None or after is None or worker_cpu_s <= 0:
        return {}
    spent = sum(
        value - before.get(name, 0.0)
        for name, value in after.items()
        if name.startswith(_QDRANT_CPU)
    )
    return {"qdrant_cpu_share": round(spent / worker_cpu_s, 3)}


def cpu_view(
    before: dict[str, float], after: dict[str, float], seconds: float, events: int
) -> dict[str, float]:
    """CPU of a level: the system under test's per event sent (ms), the broker's share of a
    core, and how busy the whole machine was (0-1 of all its cores: the worker, the broker,
    the load generator and the probe share them). At a steady rate a worker pays per-batch and
    per-fetch costs a drain shares out, and runs with caches the other processes evicted
    between events: this says what an event cost at that load, next to what the relay (the
    floor) pays for the same events, and whether the level's latency is the machine's."""
    if seconds <= 0 or events <= 0:
        return {}
    view = {
        "sut_cpu_ms_per_event": round((after["sut"] - before["sut"]) / events * 1000.0, 3),
        "broker_cores": round((after["broker"] - before["broker"]) / seconds, 3),
    }
    total = after.get("machine_total", 0.0) - before.get("machine_total", 0.0)
    if total > 0:
        busy = after["machine_busy"] - before["machine_busy"]
        view["machine_busy"] = round(busy / total, 3)
    if "machine_steal" in before and "machine_steal" in after:
        stolen = stolen_share(
            (before["machine_steal"], before["machine_total"]),
            (after["machine_steal"], after["machine_total"]),
        )
        if stolen is not None:
            view["machine_stolen"] = stolen
    return view


def _run_levels(
    ctx: BenchContext,
    prefix: str,
    name: str,
    levels: list[Level],
    sut: subprocess.Popen[bytes],
    metrics_port: int | None = None,
    topic: str = "recommendations",
) -> list[dict[str, Any]]:
    """Probe on the output topic, then each level's load; the SUT must stay alive throughout."""
    probe_log = ctx.run_dir / f"{name}-probe.tsv"
    probe_log.unlink(missing_ok=True)
    argv = ["-m", "stream.bench.probe", "--topic", topic, "--log", str(probe_log)]
    probe = ctx.supervisor.spawn(argv, ctx.env(prefix, f"{name}-probe"), ctx.log(f"{name}-probe"))
    results = []
    with ctx.supervisor.running(probe):
        wait_for(lambda: Path(f"{probe_log}.ready").exists(), 30, f"{name} probe")
        for level in levels:
            label = f"{int(level.share * 100)}%" if level.share else "warm-up"
            say(f"[latency] {name} at {label} load ({level.rate:,.0f} events/s) ...")
            sent = ctx.run_dir / f"{name}-{label.rstrip('%')}-sent.tsv"
            argv = ["-m", "stream.bench.loadgen", "--events", str(level.events)]
            argv += ["--rate", f"{level.rate:.3f}", "--sent", str(sent)]
            before = scrape_metrics(metrics_port) if metrics_port else None
            cpu0, started = _cpu(ctx, sut), time.monotonic()
            gen = ctx.supervisor.spawn(argv, ctx.env(prefix, f"{name}-loadgen"), ctx.log("loadgen"))
            with ctx.supervisor.running(gen):
                code = gen.wait(timeout=60 + 2 * level.count / level.rate)
            if code != 0 or sut.poll() is not None:
                raise RuntimeError(f"{name} at {label}: load generator {code}, SUT {sut.poll()}")
            _settle(probe_log)
            seconds = time.monotonic() - started
            stats = summarize(*answered_latencies(sent, read_probe(probe_log)))
            cpu1 = _cpu(ctx, sut)
            stats |= cpu_view(cpu0, cpu1, seconds, level.count)
            if metrics_port:
                after = scrape_metrics(metrics_port)
                stats |= _worker_view(before, after)
                stats |= qdrant_share(before, after, cpu1["sut"] - cpu0["sut"])
            say(f"[latency] {name} at {label}: {_line(stats)}")
            results.append({"load": level.share, "rate_eps": round(level.rate, 1), **stats})
    return results


def _cpu(ctx: BenchContext, sut: subprocess.Popen[bytes]) -> dict[str, float]:
    busy, total = machine_cpu()
    return {
        "sut": cpu_seconds(sut.pid),
        "broker": cpu_seconds(ctx.broker_pid),
        "machine_busy": busy,
        "machine_total": total,
        "machine_steal": machine_steal(),
    }


def _line(stats: dict[str, Any]) -> str:
    if not stats.get("events"):
        return f"no answers ({stats.get('unanswered', 0)} unanswered)"
    return (
        f"p50 {stats['p50']:.1f} ms, p95 {stats['p95']:.1f}, p99 {stats['p99']:.1f}, "
        f"max {stats['max']:.1f} ({stats['events']} events, {stats['unanswered']} unanswered)"
    )


def run_latency(
    fresh: Fresh,
    catalog: list[dict[str, Any]],
    levels: list[Level],
    warmup: Level,
    faust: FaustFloor = FaustFloor(),
    capacity: tuple[CapacitySearch, WorkloadConfig] | None = None,
) -> dict[str, Any]:
    """Pipeline latency per load level, then (with ``capacity``) the worker's steady capacity,
    then the relay floor at the same rates, then the Faust floor at ``faust.loads`` of them;
    each on a broker of its own (``fresh``), after its start-up backlog and a warm-up level
    (reported apart, under ``warmup``; the Faust floor's only if ``faust.warmup``)."""
    with fresh("latency-pipeline") as ctx:
        (pipe_warm, *pipeline), drained_s = _on_worker(
            ctx,
            catalog,
            "latency-worker",
            lambda w, port: _run_levels(ctx, _PIPE, "pipeline", [warmup, *levels], w, port),
        )
    steady: dict[str, Any] | None = None
    if capacity is not None and capacity[0].probes > 0:
        with fresh("capacity") as ctx:
            steady, _ = _on_worker(
                ctx,
                catalog,
                "capacity-worker",
                lambda w, port: _capacity(
                    ctx, catalog, capacity, pipeline, levels, warmup, w, port
                ),
            )
    bare = _Relay("floor", "floor-", "stream.bench.relay", RELAY_OUT, "relay", 30.0)
    with fresh("latency-floor") as ctx:
        floor_warm, *floor = bare.run(ctx, [warmup, *levels])
    faust_levels = [level for level in levels if level.share in faust.loads]
    with fresh("latency-faust-floor") as ctx:
        faust_rows = FAUST_RELAY.run(ctx, [warmup, *faust_levels] if faust.warmup else faust_levels)
    warm: dict[str, Any] = {"pipeline": pipe_warm, "floor": floor_warm}
    if faust.warmup:
        warm["faust_floor"] = faust_rows.pop(0)
    warm["backlog_drained_s"] = drained_s
    out = {"pipeline": pipeline, "floor": floor, "faust_floor": faust_rows, "warmup": warm}
    return out if steady is None else out | {"capacity": steady}


_PIPE = "lat-"  # the pipeline's topic prefix


def _on_worker(
    ctx: BenchContext,
    catalog: list[dict[str, Any]],
    role: str,
    body: Callable[[subprocess.Popen[bytes], int], _T],
) -> tuple[_T, float]:
    """A pipeline worker on this broker (its topics made, the catalog replayed), ready and past
    its start-up backlog; ``body(worker, metrics port)``'s result and that backlog's seconds.
    ``role`` names its data dir: one per broker (stored offsets are a broker's)."""
    settings = ctx.settings(_PIPE)
    asyncio.run(ensure_topics(settings))
    asyncio.run(replay_to(settings, catalog, total=len(catalog), progress=False))
    env = ctx.env(_PIPE, role)
    say(f"[latency] starting a pipeline worker ({role}) ...")
    worker = ctx.supervisor.adopt(spawn_worker(env, ctx.log(role)))
    with ctx.supervisor.running(worker):
        wait_ready(worker, ctx.log(role), timeout=120)
        port = int(env["RECSTREAM_METRICS_PORT"])
        drained_s = wait_drained(port)
        say(f"[latency] worker's start-up backlog processed {drained_s:.1f} s after ready")
        return body(worker, port), drained_s


def _capacity(
    ctx: BenchContext,
    catalog: list[dict[str, Any]],
    capacity: tuple[CapacitySearch, WorkloadConfig],
    pipeline: list[dict[str, Any]],
    levels: list[Level],
    warmup: Level,
    worker: subprocess.Popen[bytes],
    port: int,
) -> dict[str, Any]:
    """The search (``stream.bench.capacity``) on a worker warmed up like the levels' one, with
    the levels' rows as its first points."""
    plan, cfg = capacity
    ceiling = levels[-1].rate / levels[-1].share
    _run_levels(ctx, _PIPE, "capacity", [warmup], worker, port)

    def measure(rate: float, part: int) -> dict[str, Any]:
        level = probe_level(ctx.run_dir, catalog, cfg, rate / ceiling, rate, plan, part)
        return _run_levels(ctx, _PIPE, "capacity", [level], worker, port)[0]

    steady = search(plan, pipeline, ceiling, measure)
    say(f"[latency] steady capacity (p99 <= {plan.p99_ms:.0f} ms): {steady['eps']} events/s")
    return steady


@dataclass(frozen=True)
class _Relay:
    """A floor's relay process (``module``, writing to ``out``) and how its levels are run."""

    name: str  # its rows' name in the report
    prefix: str  # its topics' prefix
    module: str
    out: str
    role: str  # its log and data dir
    ready_timeout_s: float

    def run(self, ctx: BenchContext, levels: list[Level]) -> list[dict[str, Any]]:
        """Topics, the relay started (and stopped after), then ``levels`` through it."""
        asyncio.run(ensure_topics(ctx.settings(self.prefix), (*all_topics(), self.out)))
        ready = ctx.run_dir / f"{self.role}.ready"
        ready.unlink(missing_ok=True)
        argv = ["-m", self.module, "--out", self.out, "--ready", str(ready)]
        say(f"[latency] starting the {self.role} ...")
        env, log = ctx.env(self.prefix, self.role), ctx.log(self.role)
        relay = ctx.supervisor.spawn(argv, env, log)
        with ctx.supervisor.running(relay):
            wait_for(
                lambda: ready.exists() or relay.poll() is not None,
                self.ready_timeout_s,
                self.role,
            )
            if relay.poll() is not None:
                raise RuntimeError(f"{self.role} exited {relay.poll()} (see its log)")
            return _run_levels(ctx, self.prefix, self.name, levels, relay, topic=self.out)


#: the worker path floor (``faust_floor``): the same levels through the worker's Kafka path
#: with no engine (its user reader: the user group by default)
FAUST_RELAY = _Relay(
    "faust_floor", "faust-floor-", "stream.bench.faust_relay", FAUST_RELAY_OUT, "faust-relay", 120.0
)
