"""Where a live worker's CPU goes while it drains a backlog: py-spy samples, summed by component.

``recstream bench`` says how fast the worker is; this says why. It starts the bundled broker,
pre-fills the bench workload, starts one worker and, once the worker has processed its first
event, records it with ``py-spy record --format raw`` (all threads, idle samples off) for a
fixed time. The raw stacks are then summed into components (engine, Faust/aiokafka, sends,
changelog/state, decode, Qdrant sink, metrics...) by the deepest frame that names one, over the
busy samples of the event-loop thread and of the other threads separately, so a share reads as
"this much of the worker's busy time".

py-spy is not a dependency (``pip install py-spy``; it needs ptrace rights). Run::

    python -m stream.bench.worker_profile --events 8000 --seconds 20 --out /tmp/prof

The same run also reports the worker's CPU seconds per event over the drain (``/proc``), which
is steadier than events/s on a shared machine. ``--rate R`` records a steady stream instead: the
backlog is drained first (a warm-up), then a paced load generator sends R events/s during the
recording, as in the bench's latency levels, where nearly every event is its own batch and
ranking and the per-batch costs (fetches, produce requests, the followers) show.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream.bench.context import BenchContext
    from stream.bench.workload import WorkloadConfig

#: component -> substrings of a frame (file path or function); the deepest match wins, so a
#: Faust frame that calls the pipeline that calls the engine counts as engine
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qdrant_sink", ("qdrant", "coalescing_writer")),
    ("metrics", ("prometheus_client", "adapters/metrics.py", "runtime_metrics", "socketserver")),
    ("engine", ("stream/domain/",)),
    ("changelog_state", ("changelog_store", "rocksdict", "state_store")),
    ("decode", ("adapters/codec.py", "adapters/validation.py")),
    ("pfeed", ("pfeed_runtime", "live_lookup", "onnxruntime")),
    ("sends", ("adapters/outputs.py",)),
    ("pipeline", ("stream/pipeline.py", "faust_batches", "user_group", "stream/app.py")),
    ("aiokafka", ("aiokafka/",)),
    ("faust", ("faust/", "mode/")),
    ("event_loop", ("asyncio/", "uvloop")),
)
#: leaf frames of a thread that waits (py-spy may still sample a thread blocked in these)
IDLE_LEAVES = (
    "select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "wait (threading.py",
    "readinto (socket.py",
)
MAIN_THREAD_MARK = "<frozen runpy>"
#: the first frame py-spy writes with ``--threads``: ``thread (TID): NAME``. The thread decides
#: the side, not the root frame: py-spy can cut a sampled stack short, and cut stacks of the
#: event loop's thread (aiokafka's protocol code, ~9 % of the GIL-holding samples at 300
#: events/s) were counted as other threads' when only the root told them apart
THREAD_PREFIX = "thread ("
MAIN_THREAD_NAME = ": MainThread"


def component(frames: list[str]) -> str:
    """The component of the deepest frame that names one ("other" if none does)."""
    for frame in reversed(frames):
        for name, marks in COMPONENTS:
            if any(mark in frame for mark in marks):
                return name
    return "other"


def summarise(lines: Iterable[str]) -> dict[str, Any]:
    """Shares of busy samples per component, event-loop thread and other threads apart."""
    busy: dict[str, Counter[str]] = {"event_loop_thread": Counter(), "other_threads": Counter()}
    idle = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(mark in frames[-1] for mark in IDLE_LEAVES):
            idle += int(count)
            continue
        if frames[0].startswith(THREAD_PREFIX):  # (recorded with --threads)
            main = frames[0].endswith(MAIN_THREAD_NAME)
            frames = frames[1:]
        else:  # a file recorded before: the root frame tells the event loop's thread
            main = MAIN_THREAD_MARK in frames[0]
        busy["event_loop_thread" if main else "other_threads"][component(frames)] += int(count)
    total = sum(sum(c.values()) for c in busy.values()) or 1
    return {
        "busy_samples": total,
        "idle_samples": idle,
        **{
            thread: {name: round(n / total, 4) for name, n in counts.most_common()}
            for thread, counts in busy.items()
        },
    }


def _pyspy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("py-spy not found: pip install py-spy (it is not a project dependency)")
    return found


def spy_argv(spy_bin: str, pid: int, raw: Path, seconds: int, gil: bool) -> list[str]:
    """py-spy's command line: all threads at 100 Hz, raw stacks each under its thread, optionally
    GIL holders only."""
    argv = [spy_bin, "record", "--pid", str(pid), "--format", "raw", "-o", str(raw)]
    argv += ["-d", str(seconds), "-r", "100", "--nonblocking", "--threads"]
    return [*argv, "--gil"] if gil else argv


def profile_worker(
    events: int, seconds: int, out: Path, gil: bool = False, rate: float = 0.0
) -> dict[str, Any]:
    """Broker + backlog + one worker, recorded by py-spy; returns the summary (also written).

    ``gil``: sample only the thread holding the GIL. A thread waiting to re-take the GIL (after
    a socket write, say) is not idle to py-spy, so without it such waits read as busy time.
    ``rate``: record a steady stream instead of the drain. The backlog is drained first as a
    warm-up; then a paced load generator sends ``rate`` events/s while py-spy records, so the
    profile shows what a worker does when nearly every event is its own ranking.
    """
    from stream.bench.context import BenchContext, say
    from stream.bench.procstat import cpu_seconds
    from stream.bench.runner import BenchOptions, _prefill
    from stream.bench.supervisor import Supervisor
    from stream.bench.throughput import scrape_done
    from stream.bench.workload import generate_events, load_catalog
    from stream.local_worker import spawn_worker

    spy_bin = _pyspy()
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "worker.raw"
    cfg = BenchOptions.build(quick=True).workload()
    supervisor = Supervisor()
    supervisor.install()
    run_dir = Path(tempfile.mkdtemp(prefix="recstream-profile-"))
    try:
        catalog = load_catalog(cfg)
        backlog = list(generate_events(catalog, cfg, events))
        broker = supervisor.broker(run_dir / "broker.log")
        ctx = BenchContext(supervisor, broker.bootstrap, broker.process.pid, run_dir)
        _prefill(ctx, "prof-", catalog, backlog)
        env = ctx.env("prof-", "worker")
        worker = supervisor.adopt(spawn_worker(env, ctx.log("worker")))
        port = int(env["RECSTREAM_METRICS_PORT"])
        wanted = len(backlog) if rate > 0 else 1
        while (scrape_done(port) or 0) < wanted:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited (see {ctx.log('worker')})")
            time.sleep(0.05)
        if rate > 0:
            _paced_load(ctx, catalog, cfg, rate, seconds)
        t0, n0, cpu0 = time.time(), scrape_done(port) or 0, cpu_seconds(worker.pid)
        spy = subprocess.Popen(
            spy_argv(spy_bin, worker.pid, raw, seconds, gil),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        say(f"[profile] recording the worker (pid {worker.pid}) for {seconds} s ...")
        spy.wait()
        t1, n1, cpu1 = time.time(), scrape_done(port) or 0, cpu_seconds(worker.pid)
    finally:
        supervisor.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    summary = summarise(raw.read_text().splitlines())
    done = max(1, n1 - n0)
    summary["drain"] = {  # (the key is kept for a paced run: "paced_rate" tells them apart)
        "paced_rate": rate or None,
        "events": n1 - n0,
        "seconds": round(t1 - t0, 2),
        "events_per_s": round(done / max(1e-9, t1 - t0), 1),
        "worker_cpu_us_per_event": round(1e6 * (cpu1 - cpu0) / done, 1),
    }
    (out / "worker_profile.json").write_text(json.dumps(summary, indent=2))
    return summary


def _paced_load(
    ctx: BenchContext, catalog: list[dict[str, Any]], cfg: WorkloadConfig, rate: float, seconds: int
) -> None:
    """Start a load generator sending ``rate`` events/s for a little longer than the recording,
    from a workload part the backlog does not use, and give it time to reach its pace."""
    from stream.bench.loadgen import write_jsonl
    from stream.bench.workload import generate_events

    path = ctx.run_dir / "paced.jsonl"
    count = write_jsonl(path, generate_events(catalog, cfg, int(rate * (seconds + 4)), part=10))
    argv = ["-m", "stream.bench.loadgen", "--events", str(path), "--rate", f"{rate:.3f}"]
    argv += ["--sent", str(ctx.run_dir / "paced-sent.tsv")]
    ctx.supervisor.spawn(argv, ctx.env("prof-", "loadgen"), ctx.log("loadgen"))
    time.sleep(min(2.0, count / rate / 4))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=8000, help="backlog size")
    parser.add_argument("--seconds", type=int, default=20, help="recording time")
    parser.add_argument("--out", type=Path, default=Path("/tmp/recstream-profile"))
    parser.add_argument("--summarise", type=Path, help="only summarise this raw py-spy file")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="record a paced stream of this many events/s"
    )
    parser.add_argument(
        "--gil", action="store_true", help="only samples of the thread holding the GIL"
    )
    args = parser.parse_args(argv)
    if args.summarise is not None:
        summary = summarise(args.summarise.read_text().splitlines())
    else:
        summary = profile_worker(args.events, args.seconds, args.out, gil=args.gil, rate=args.rate)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
