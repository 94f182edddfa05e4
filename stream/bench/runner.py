"""`recstream bench`: every phase in order, one progress line per step, one report at the end.

In-process measurements run first, while nothing else of ours is running; then the RSS
children; then the broker is started, the backlog pre-filled and the throughput drains run;
the latency phase last, because its loads are fractions of the measured maximum rate. Every
child process is owned by one ``Supervisor`` and stopped by PID whatever happens.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream.adapters.topics import all_topics, ensure_topics
from stream.bench.capacity import CapacitySearch
from stream.bench.context import BenchContext, fresh_contexts, say
from stream.bench.faust_baseline import NAIVE_OUT
from stream.bench.hotspots import profile_bursts
from stream.bench.inprocess import bursts, encode, measure_bursts, measure_steady
from stream.bench.latency import FaustFloor, run_latency
from stream.bench.levels import LOADS, prepare_levels, warmup_level
from stream.bench.loadgen import write_jsonl
from stream.bench.procstat import machine
from stream.bench.report import headline_latency, write_report
from stream.bench.scaling import measure_scaling
from stream.bench.state_size import profile_sizes, run_rss, write_templates
from stream.bench.supervisor import Supervisor
from stream.bench.throughput import run_throughput
from stream.bench.workload import WorkloadConfig, generate_events, load_catalog, topic_mix
from stream.settings import Settings
from stream.tools import replay_to

#: what ``--quick`` changes (the full run uses the field defaults of ``BenchOptions``)
QUICK: dict[str, Any] = {
    "events": 2500,
    # a longer backlog than the in-process workload: 2,500 events drained in 0.6-1.6 s, less
    # than two workers' joins can be apart (see ``throughput.all_busy``); ~+7 s
    "drain_events": 8000,
    "items": 3000,
    "users": 1000,
    "latency_seconds": 2.0,
    "state_sizes": (2000, 10_000, 20_000),
    "repeats": 30,
    "faust_floor_loads": (0.5,),
    "faust_floor_warmup": False,
    "capacity_probes": 0,
    "rounds": 1,
}


@dataclass(frozen=True)
class BenchOptions:
    quick: bool = False
    events: int = 20_000  # the in-process workload, and the throughput backlog by default
    drain_events: int | None = None  # the throughput backlog, when not ``events``
    items: int = 5000
    users: int = 2000
    latency_seconds: float = 15.0  # per load level
    state_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    repeats: int = 200  # clicks per scaling point
    #: the loads the Faust floor also runs at, and whether a warm-up level comes first
    #: (``--quick``: the 50 % one only, no warm-up: ~9 s instead of ~25, within 2 minutes)
    faust_floor_loads: tuple[float, ...] = LOADS
    faust_floor_warmup: bool = True
    #: paced probes of one worker's steady capacity after the latency levels, the p99 bound
    #: and each probe's length (``stream.bench.capacity``; ``--quick``: none, ~40 s saved)
    capacity_probes: int = 4
    capacity_p99_ms: float = 100.0
    capacity_seconds: float = 8.0
    #: how many times the pipeline and the naive Faust agent drain the backlog (``--quick``:
    #: once; a further round cost ~60 s in a full run, and would cost ~30 s in a quick one);
    #: the headline figures are the medians (``throughput.run_throughput``)
    rounds: int = 3
    seed: int = 7
    out_dir: Path = Path("reports/bench")
    json_path: Path | None = None
    batch_max: int = field(default_factory=lambda: Settings().batch_max)

    @classmethod
    def build(cls, quick: bool, **overrides: Any) -> BenchOptions:
        """Mode defaults (``--quick`` or full), then whatever was given explicitly."""
        values = dict(QUICK) if quick else {}
        if overrides.get("events") is not None and overrides.get("drain_events") is None:
            values.pop("drain_events", None)  # --events alone sizes the backlog too
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("rounds", 1) < 1:
            raise ValueError(f"rounds must be >= 1, got {values['rounds']}")
        return cls(quick=quick, **values)

    def workload(self) -> WorkloadConfig:
        return WorkloadConfig(items=self.items, users=self.users, seed=self.seed)


#: the checkout this module runs from
ROOT = Path(__file__).resolve().parents[2]


def _commit(root: Path = ROOT) -> tuple[str, bool]:
    """The checkout's short commit, and whether its code (not its reports) has changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            # the reports a run writes are not code: a quick run's fresh report must not mark
            # the full run after it as dirty
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return sha, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


#: a fresh part of the workload for ``measure_steady`` (levels use 1-4, capacity probes 10 on)
STEADY_PART = 9
STEADY_EVENTS = 2_000


def _in_process(
    opts: BenchOptions, catalog: list[dict[str, Any]], events: list[dict[str, Any]], run_dir: Path
) -> tuple[dict[str, Any], Path]:
    say(f"[in-process] per-burst stages over {len(events):,} events ...")
    burst, runner = measure_bursts(catalog, events, opts.batch_max)
    say(
        f"[in-process] burst p50 {burst['total_us']['p50']:.0f} µs, "
        f"p99 {burst['total_us']['p99']:.0f} µs ({burst['events_per_burst']} events/burst)"
    )
    cut = bursts(encode(events), opts.batch_max)
    say("[in-process] profiling the hot path (cProfile) ...")
    hot = profile_bursts(runner, cut[len(cut) // 2 :][:400])
    sizes = profile_sizes(runner.store)
    templates = run_dir / "profiles.jsonl"
    write_templates(runner.store, templates)
    say(f"[in-process] cost vs candidates and query items ({opts.repeats} clicks per point) ...")
    scaling = measure_scaling(runner, events, opts.repeats)
    state = {"bytes_per_user": sizes, "heavy_profile_bytes": scaling["heavy_profile_bytes"]}
    say(
        f"[in-process] state: mean {sizes.get('mean')} B/user, heavy user "
        f"{scaling['heavy_profile_bytes']} B"
    )
    # last: it grows the runner's profiles, which the figures above must not see
    wanted = min(STEADY_EVENTS, len(events))
    steady_events = list(generate_events(catalog, opts.workload(), wanted, part=STEADY_PART))
    say(f"[in-process] a steady stream's batches ({len(steady_events):,} fresh events) ...")
    burst["steady"] = steady = measure_steady(runner, steady_events)
    say(
        f"[in-process] steady: {steady['cpu_us_per_event']:.0f} µs of CPU an event "
        f"({steady['events_per_burst']} events a burst, windows of {steady['window']})"
    )
    return {"burst": burst, "hotspots": hot, "scaling": scaling, "state": state}, templates


def _prefill(ctx: BenchContext, prefix: str, catalog: list[Any], events: list[Any]) -> None:
    settings = ctx.settings(prefix)
    asyncio.run(ensure_topics(settings, (*all_topics(), NAIVE_OUT)))
    say(f"[broker] pre-filling {len(catalog):,} catalog + {len(events):,} events ...")
    asyncio.run(replay_to(settings, catalog, total=len(catalog), progress=False))
    stats = asyncio.run(replay_to(settings, events, total=len(events)))
    if stats.total != len(events):
        raise RuntimeError(f"pre-fill delivered {stats.total}/{len(events)} events")


def _header(opts: BenchOptions) -> dict[str, Any]:
    sha, dirty = _commit()
    return {
        "commit": sha,
        "dirty": dirty,
        "command": "recstream " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "recstream bench",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": opts.quick,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
    }


def _workload_section(
    cfg: WorkloadConfig, catalog: list[dict[str, Any]], events: list[dict[str, Any]]
) -> dict[str, Any]:
    mix = topic_mix(events)
    return {
        **cfg.describe(),
        "events": len(events),
        "mix": mix,
        "description": f"{len(catalog):,} Complete Journey products (simulated data), "
        f"{cfg.users:,} users, Zipf {cfg.zipf_items} items / {cfg.zipf_users} users, "
        f"{cfg.concurrency} concurrent sessions; mix {mix}",
    }


def _with_processes(
    opts: BenchOptions,
    supervisor: Supervisor,
    run_dir: Path,
    catalog: list[dict[str, Any]],
    backlog: list[dict[str, Any]],
    templates: Path,
) -> dict[str, Any]:
    """The phases that run child processes: RSS children, then everything on the broker."""
    catalog_file = run_dir / "catalog.jsonl"
    write_jsonl(catalog_file, catalog)
    no_broker = BenchContext(supervisor, bootstrap="", broker_pid=0, run_dir=run_dir)
    rss = run_rss(no_broker, templates, opts.state_sizes, catalog_file, 1000)
    prefilled = fresh_contexts(supervisor, run_dir, lambda c: _prefill(c, "tp-", catalog, backlog))
    throughput = run_throughput(prefilled, "tp-", len(backlog), opts.rounds)
    levels = prepare_levels(
        run_dir, catalog, opts.workload(), throughput["pipeline_eps"], opts.latency_seconds
    )
    warmup = warmup_level(run_dir, catalog, opts.workload(), levels[0])
    faust = FaustFloor(opts.faust_floor_loads, opts.faust_floor_warmup)
    plan = CapacitySearch(opts.capacity_probes, opts.capacity_p99_ms, opts.capacity_seconds)
    fresh = fresh_contexts(supervisor, run_dir)
    latency = run_latency(fresh, catalog, levels, warmup, faust, (plan, opts.workload()))
    out = {k: v for k, v in throughput.items() if k not in ("runs", "rounds")}
    runs = {"throughput_runs": throughput["runs"], "throughput_rounds": throughput["rounds"]}
    return out | runs | {"latency": latency, "rss": rss}


def run_bench(opts: BenchOptions, run_dir: Path) -> dict[str, Any]:
    """Every phase; child processes are stopped by the supervisor however this ends."""
    started = time.time()
    supervisor = Supervisor()
    supervisor.install()
    try:
        report: dict[str, Any] = {"header": _header(opts)}
        cfg = opts.workload()
        say(f"[workload] {cfg.items:,} Complete Journey products, {cfg.users:,} users ...")
        catalog = load_catalog(cfg)
        events = list(generate_events(catalog, cfg, opts.events))
        report["workload"] = _workload_section(cfg, catalog, events)
        sections, templates = _in_process(opts, catalog, events, run_dir)
        report.update(sections)
        backlog = events
        if opts.drain_events is not None and opts.drain_events != len(events):
            backlog = list(generate_events(catalog, cfg, opts.drain_events))
        report["workload"]["backlog_events"] = len(backlog)
        measured = _with_processes(opts, supervisor, run_dir, catalog, backlog, templates)
    finally:
        supervisor.close()
    report["state"]["rss"] = measured.pop("rss")
    report.update(measured)
    report["latency_ms"] = headline_latency(report["latency"])
    report["floor_latency_ms"] = headline_latency(report["latency"], "floor")
    report["faust_floor_latency_ms"] = headline_latency(report["latency"], "faust_floor")
    report["latency_over_floor_ms"] = {
        q: round(report["latency_ms"][q] - report["floor_latency_ms"][q], 2)
        for q in ("p50", "p95", "p99")
        if q in report["latency_ms"] and q in report["floor_latency_ms"]
    }
    if "capacity" in report["latency"]:
        report["steady_capacity_eps"] = report["latency"]["capacity"]["eps"]
    report["header"]["duration_s"] = round(time.time() - started, 1)
    return report


def main(opts: BenchOptions) -> int:
    """Run, write JSON / markdown / PNGs, print where they are and the headline figures."""
    import shutil
    import tempfile

    run_dir = Path(tempfile.mkdtemp(prefix="recstream-bench-"))
    try:
        report = run_bench(opts, run_dir)
    except BaseException:
        say(f"[bench] failed; logs kept in {run_dir / 'logs'}")
        raise
    shutil.rmtree(run_dir, ignore_errors=True)
    paths = write_report(report, opts.out_dir, opts.json_path)
    say(f"[report] wrote {', '.join(str(p) for p in paths)}")
    lat = report["latency_ms"]
    print(
        f"pipeline {report['pipeline_eps']:,.0f} events/s · two workers "
        f"{report['two_workers_eps']:,.0f} · naive Faust {report['naive_faust_eps']:,.0f} · "
        f"no-op Faust {report['noop_faust_eps']:,.0f} · bare consumer "
        f"{report['bare_consumer_eps']:,.0f} · latency at 50 % p50 {lat.get('p50')} ms "
        f"p99 {lat.get('p99')} ms · took {report['header']['duration_s']:.0f} s"
    )
    return 0
