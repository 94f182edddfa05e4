"""Sustained throughput: a pre-filled backlog drained by one process, first to last event.

The backlog (N user events, catalog before it) is produced before anything consumes it, so a
measurement never competes with its load generator for the two cores. Then, one after the
other and each in its own consumer group: the full pipeline with one worker, the naive Faust
agent right after it (the headline ratio's two drains, next to each other in time, as this
machine's speed drifts over minutes), the pipeline with two workers (same topics, same
partitions), the no-op Faust agent and a bare aiokafka consumer; with rounds (full runs), the
pipeline and the naive agent again, in alternating order.

The pipeline is a black box: its rate comes from polling ``recstream_events_processed_total``
on each worker's /metrics every ``POLL_S`` (rate between the first poll that saw progress and
the poll that saw all N, so the poll period does not bias it). Baselines time themselves
(``stream.bench.rate``). CPU seconds of the broker and each worker over the drain show where the
cores went (``cpu_cores``: 1.0 = one core busy all the time).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stream.bench.context import BenchContext, Fresh, say
from stream.bench.procstat import cpu_seconds, steal_reading, stolen_share
from stream.bench.rate import read_result
from stream.local_worker import scrape_metrics, spawn_worker
from stream.settings import USER_TOPICS

POLL_S = 0.1
#: the shortest window (in polls) in which every worker drained at once that ``all_busy`` rates
MIN_BUSY_POLLS = 5
#: one poll of a drain: when, and each worker's events done by then
Sample = tuple[float, list[int]]
_COUNTED = tuple(f'topic="{t}"' for t in USER_TOPICS)
#: only these are scraped while draining (a full /metrics every POLL_S took ~10 % of the
#: worker's samples in a py-spy profile: the harness slowed what it measured)
_DONE_METRICS = ("recstream_events_processed_total", "recstream_dead_letters_total")
#: lists the workers emitted: a drain coalesces each user's events of a batch into one
_LISTS_METRIC = "recstream_recommendations_emitted_total"


def scrape_done(port: int) -> int | None:
    """User events processed + dead-lettered by one worker, or None while /metrics is down."""
    samples = scrape_metrics(port, _DONE_METRICS)
    if samples is None:
        return None
    counters = tuple(f"{name}{{" for name in _DONE_METRICS)
    return int(
        sum(
            value
            for name, value in samples.items()
            if name.startswith(counters) and any(label in name for label in _COUNTED)
        )
    )


def scrape_lists(port: int) -> int | None:
    """Lists one worker emitted so far, or None while /metrics is down."""
    samples = scrape_metrics(port, (_LISTS_METRIC,))
    if samples is None:
        return None
    return int(sum(v for name, v in samples.items() if name.startswith(f"{_LISTS_METRIC}{{")))


@dataclass
class Drain:
    """What one drain measured."""

    eps: float
    events: int
    seconds: float
    startup_s: float
    cpu_cores: dict[str, float] = field(default_factory=dict)
    per_worker: list[int] = field(default_factory=list)
    series: list[tuple[float, int]] = field(default_factory=list)
    #: 1-minute load average at the end: how busy the shared machine was meanwhile
    loadavg: float = field(default_factory=lambda: os.getloadavg()[0])
    #: share of all cores the VM's host took over the run, start-up included (``procstat``)
    stolen: float | None = None
    #: several workers: the window in which all of them drained at once (``all_busy``)
    all_busy: dict[str, Any] | None = None
    #: lists the pipeline's workers emitted for the whole backlog (None: not a pipeline, or
    #: /metrics did not answer): fewer than events, as a batch gives a user one list
    lists: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "eps": round(self.eps, 1),
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "startup_s": round(self.startup_s, 1),
            "cpu_cores": {k: round(v, 2) for k, v in self.cpu_cores.items()},
            "per_worker": self.per_worker,
            "loadavg": round(self.loadavg, 2),
            "stolen": self.stolen,
            "series": [(round(t, 2), n) for t, n in self.series],
            **({"all_busy": self.all_busy} if self.all_busy is not None else {}),
            **({"lists_per_event": self.lists_per_event} if self.lists is not None else {}),
        }

    @property
    def lists_per_event(self) -> float | None:
        """Lists emitted an event drained: what a drained event's rate includes of ranking."""
        if self.lists is None or not self.events:
            return None
        return round(self.lists / self.events, 3)


def all_busy(samples: list[Sample], min_polls: int = MIN_BUSY_POLLS) -> dict[str, Any]:
    """The workers' combined rate over the polls in which every one of them was draining.

    Why: each worker's join is answered on its own, and the bundled broker answered two
    workers' joins up to ~1 s apart (measured: Faust's Ready 0.08-0.99 s apart over three
    drains of one backlog). On a drain of a second or two, one worker may have finished its
    partitions before the other began, and the first-to-last rate then times the workers one
    after the other. From the poll by which the last worker had begun to the poll before the
    first one finished, all of them were busy: that rate is what the second worker adds while
    both run. ``start_skew_s``: how far apart their first events were seen; ``eps`` is None when
    that window is shorter than ``min_polls`` polls (or a worker got no events)."""
    finals = samples[-1][1]
    if len(finals) < 2 or min(finals) == 0:
        return {"eps": None, "seconds": 0.0, "start_skew_s": None}
    width = range(len(finals))
    starts = [next(k for k, (_, c) in enumerate(samples) if c[i] > 0) for i in width]
    ends = [next(k for k, (_, c) in enumerate(samples) if c[i] >= finals[i]) for i in width]
    skew = round(samples[max(starts)][0] - samples[min(starts)][0], 2)
    lo, hi = max(starts), min(ends) - 1
    if hi - lo < min_polls:
        return {"eps": None, "seconds": 0.0, "start_skew_s": skew}
    (t0, c0), (t1, c1) = samples[lo], samples[hi]
    done = sum(c1) - sum(c0)
    return {"eps": round(done / (t1 - t0), 1), "seconds": round(t1 - t0, 2), "start_skew_s": skew}


def drain_pipeline(
    ctx: BenchContext, prefix: str, n_events: int, workers: int, timeout: float
) -> Drain:
    """Start ``workers`` pipeline workers on the backlog and time them until all N are done."""
    role = f"pipeline{workers}"
    envs = [
        ctx.env(prefix, f"{role}-{i}", RECSTREAM_APP_ID=f"bench-{role}") for i in range(workers)
    ]
    started = time.time()
    procs = [
        ctx.supervisor.adopt(spawn_worker(env, ctx.log(f"{role}-{i}")))
        for i, env in enumerate(envs)
    ]
    ports = [int(env["RECSTREAM_METRICS_PORT"]) for env in envs]
    pids = {"broker": ctx.broker_pid, **{f"worker{i + 1}": p.pid for i, p in enumerate(procs)}}
    pids["harness"] = os.getpid()
    with ctx.supervisor.running(*procs):
        samples: list[Sample] = []
        cpu0: dict[str, float] = {}
        deadline = started + timeout
        while True:
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise RuntimeError(f"{role} worker {i} exited ({ctx.log(f'{role}-{i}')})")
            counts = [scrape_done(port) or 0 for port in ports]
            now = time.time()
            samples.append((now, counts))
            if not cpu0 and sum(counts) > 0:
                cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            if sum(counts) >= n_events:
                break
            if now > deadline:
                raise TimeoutError(f"{role}: {sum(counts)}/{n_events} events after {timeout:.0f}s")
            time.sleep(POLL_S)
        cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        scraped = [scrape_lists(port) for port in ports]
    lists = None if None in scraped else sum(n or 0 for n in scraped)
    first = next(i for i, (_, c) in enumerate(samples) if sum(c) > 0)
    # from the last poll that saw nothing: a small backlog may be drained between two polls,
    # so this errs towards a lower rate rather than dividing by zero time
    first = max(0, first - 1)
    (t0, c0), (t1, c1) = samples[first], samples[-1]
    seconds = t1 - t0
    done = sum(c1) - sum(c0)
    return Drain(
        eps=done / seconds if seconds > 0 else float(done),
        events=sum(c1),
        seconds=seconds,
        startup_s=t0 - started,
        cpu_cores={k: (cpu1[k] - cpu0.get(k, 0.0)) / seconds for k in cpu1} if seconds else {},
        per_worker=c1,
        series=[(t - t0, sum(c)) for t, c in samples[first:]],
        all_busy=all_busy(samples) if workers > 1 else None,
        lists=lists,
    )


def drain_baseline(
    ctx: BenchContext, prefix: str, n_events: int, kind: str, timeout: float
) -> Drain:
    """Run one baseline process (``noop`` / ``naive`` Faust agent, ``bare`` consumer)."""
    result = ctx.run_dir / f"{kind}.result.json"
    result.unlink(missing_ok=True)
    module = "stream.bench.bare_consumer" if kind == "bare" else "stream.bench.faust_baseline"
    argv = ["-m", module, *([] if kind == "bare" else [kind])]
    argv += ["--expect", str(n_events), "--result", str(result)]
    started = time.time()
    proc = ctx.supervisor.spawn(argv, ctx.env(prefix, kind), ctx.log(kind))
    with ctx.supervisor.running(proc):
        body = _wait_result(result, proc, started + timeout, ctx.log(kind))
    return Drain(
        eps=float(body["eps"]),
        events=int(body["count"]),
        seconds=float(body["last"] - body["first"]),
        startup_s=float(body["first"] - started),
    )


def _wait_result(path: Path, proc: Any, deadline: float, log: Path) -> dict[str, float]:
    while time.time() < deadline:
        body = read_result(path)
        if body is not None:
            return body
        if proc.poll() is not None:
            raise RuntimeError(f"baseline exited with {proc.returncode} (see {log})")
        time.sleep(0.1)
    raise TimeoutError(f"baseline gave no result in time (see {log})")


#: name in the report -> how to measure it
RUNS = ("pipeline", "naive_faust", "two_workers", "noop_faust", "bare_consumer")


#: the two drains later rounds repeat: the headline ratio's numerator and denominator
PAIRED = ("pipeline", "naive_faust")


def run_throughput(fresh: Fresh, prefix: str, n_events: int, rounds: int = 1) -> dict[str, Any]:
    """Every drain of the same backlog, one after the other, each on a broker of its own
    pre-filled alike (``fresh``: see ``Supervisor.fresh_broker``); figures and ratios.

    ``rounds`` > 1 drains the pipeline and the naive Faust agent again, ``rounds`` - 1 more
    times, which of the two goes first alternating: one pair on this machine moved by ±20 %
    or more with the host's load (the headline ratio sat within 1.96–2.01× in four reports,
    and a run during host steal gave 1.71×). ``pipeline_eps`` and ``naive_faust_eps`` are
    then the medians of the rounds, and ``rounds`` lists each round's pair and ratio."""
    timeout = 120.0 + n_events / 50.0
    drains: dict[str, Drain] = {}
    for name in RUNS:
        drains[name] = _timed(fresh, name, prefix, n_events, timeout, 1)
    pairs = [(drains["pipeline"], drains["naive_faust"])]
    for r in range(2, rounds + 1):
        order = PAIRED[::-1] if r % 2 == 0 else PAIRED
        got = {name: _timed(fresh, name, prefix, n_events, timeout, r, rounds) for name in order}
        pairs.append((got["pipeline"], got["naive_faust"]))
    out: dict[str, Any] = {f"{name}_eps": round(d.eps, 1) for name, d in drains.items()}
    out["pipeline_eps"] = round(statistics.median(p.eps for p, _ in pairs), 1)
    out["naive_faust_eps"] = round(statistics.median(n.eps for _, n in pairs), 1)
    busy = drains["two_workers"].all_busy or {}
    out["two_workers_all_busy_eps"] = busy.get("eps")
    out["ratios"] = ratios(out)
    out["runs"] = {name: d.to_dict() for name, d in drains.items()}
    out["rounds"] = [_round(p, n) for p, n in pairs]
    if rounds > 1:
        say(
            f"[throughput] {rounds} rounds: pipeline vs naive Faust "
            + " / ".join(f"{r['ratio']:.2f}x" for r in out["rounds"])
            + f"; medians {out['pipeline_eps']:,.0f} vs {out['naive_faust_eps']:,.0f} events/s"
        )
    return out


def _round(pipeline: Drain, naive: Drain) -> dict[str, Any]:
    ratio = pipeline.eps / naive.eps if naive.eps else 0.0
    return {
        "pipeline_eps": round(pipeline.eps, 1),
        "naive_faust_eps": round(naive.eps, 1),
        "ratio": round(ratio, 4),
        "stolen": [pipeline.stolen, naive.stolen],
    }


def _timed(
    fresh: Fresh, name: str, prefix: str, n_events: int, timeout: float, r: int, rounds: int = 1
) -> Drain:
    """One drain on a broker of its own (round ``r``), with its progress lines."""
    label, tag = (f" (round {r} of {rounds})", f"-round{r}") if r > 1 else ("", "")
    with fresh(f"throughput-{name}{tag}") as ctx:
        say(f"[throughput] {name}{label}: draining {n_events:,} events ...")
        d = _drain(replace(ctx, tag=tag), name, prefix, n_events, timeout)
    say(
        f"[throughput] {name}{label}: {d.eps:,.0f} events/s "
        f"({d.events:,} in {d.seconds:.2f}s, ready after {d.startup_s:.1f}s)"
    )
    return d


def _drain(ctx: BenchContext, name: str, prefix: str, n_events: int, timeout: float) -> Drain:
    before = steal_reading()
    if name in ("pipeline", "two_workers"):
        drain = drain_pipeline(ctx, prefix, n_events, 1 if name == "pipeline" else 2, timeout)
    else:
        kind = {"noop_faust": "noop", "naive_faust": "naive", "bare_consumer": "bare"}[name]
        drain = drain_baseline(ctx, prefix, n_events, kind, timeout)
    drain.stolen = stolen_share(before, steal_reading())
    return drain


def ratios(figures: dict[str, Any]) -> dict[str, float]:
    """Every figure over every baseline of the same run (e.g. ``pipeline_vs_naive_faust``)."""
    out: dict[str, float] = {}
    for name in ("pipeline", "two_workers"):
        for base in ("naive_faust", "noop_faust", "bare_consumer"):
            if figures.get(f"{base}_eps"):
                out[f"{name}_vs_{base}"] = round(figures[f"{name}_eps"] / figures[f"{base}_eps"], 4)
    if figures.get("pipeline_eps"):
        for name in ("two_workers", "two_workers_all_busy"):
            if figures.get(f"{name}_eps"):
                out[f"{name}_vs_pipeline"] = round(
                    figures[f"{name}_eps"] / figures["pipeline_eps"], 4
                )
    return out
