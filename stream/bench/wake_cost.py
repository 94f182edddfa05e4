"""What a pause between bursts costs: the CPU of one-event bursts after the thread slept.

Why this exists: a live worker at a steady 300 events/s spends ~1.3 ms of CPU an engine step,
1.4-1.7x what the same step costs in process, where the bench runs bursts back to back. A
live worker sleeps between batches (it waits on a fetch), so its caches, branch predictors
and, on a virtual machine, its whole core may be cold when the next event comes. This tool
measures that directly, with nothing but the engine: the bench's in-process runner (state,
decode, engine, serialise), one-event bursts of the quick workload, each preceded by a sleep
of one of ``GAPS_MS``. The gaps take turns in blocks of ``BLOCK`` bursts (a rhythm, as a
steady stream has one; the first ``SETTLE`` bursts of a block, still in the last block's
rhythm, are not counted), so every gap sees the same mix of users and history lengths. A
burst's CPU is its thread's CPU time (the sleep not counted). A gap whose bursts cost more
than the no-gap bursts is what the worker pays for the time between events, whatever its
code does.

``--spin`` busy-waits instead of sleeping, so the core never goes idle: what is left of the
extra cost then comes from time passing (other work on the machine evicting the engine's
data and code from the caches), not from the core's idle state.

Run::

    python -m stream.bench.wake_cost --out /tmp/wake

It writes ``wake_cost.json`` and ``wake_cost.png`` there (``wake_cost_spin.*`` with
``--spin``), in ~20 s on the quick workload.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: pauses before a burst, in ms: none, shorter than a batch, a fetch wait (20 ms) and between
GAPS_MS: tuple[float, ...] = (0.0, 0.3, 1.0, 3.0, 10.0)
#: bursts in a row with one gap, and how many of them only settle into its rhythm
BLOCK = 40
SETTLE = 5


def assign(n_bursts: int, gaps: Sequence[float], block: int = BLOCK) -> list[float]:
    """The gap before each burst: the gaps in turn, ``block`` bursts each."""
    if not gaps or block < 1:
        raise ValueError("at least one gap and a block of at least one burst are needed")
    return [gaps[(i // block) % len(gaps)] for i in range(n_bursts)]


def counted(i: int, block: int = BLOCK, settle: int = SETTLE) -> bool:
    """Whether burst ``i`` is timed: not among the first ``settle`` of its block."""
    return i % block >= settle


def summarise(cpu_us: dict[float, list[float]]) -> dict[str, Any]:
    """Per gap: bursts, mean and median CPU (µs), and the mean's ratio to the smallest gap's."""
    if not cpu_us:
        return {"gaps": []}
    base_gap = min(cpu_us)
    base = statistics.fmean(cpu_us[base_gap]) if cpu_us[base_gap] else 0.0
    rows = []
    for gap in sorted(cpu_us):
        values = cpu_us[gap]
        mean = statistics.fmean(values) if values else 0.0
        rows.append(
            {
                "gap_ms": gap,
                "bursts": len(values),
                "mean_us": round(mean, 1),
                "p50_us": round(statistics.median(values), 1) if values else 0.0,
                "ratio": round(mean / base, 2) if base > 0 else None,
            }
        )
    return {"baseline_gap_ms": base_gap, "gaps": rows}


def pause(gap_ms: float, spin: bool) -> None:
    """Wait ``gap_ms``: asleep, or busy (``spin``: no idle core, no CPU given away)."""
    if gap_ms <= 0:
        return
    if not spin:
        time.sleep(gap_ms / 1000.0)
        return
    end = time.perf_counter() + gap_ms / 1000.0
    while time.perf_counter() < end:
        pass


def measure(
    events: int,
    gaps: Sequence[float],
    seed: int = 7,
    spin: bool = False,
    progress_every: int = 500,
    pfeed: bool | None = None,
) -> dict[str, Any]:
    """Warm the in-process runner on the first half of ``events`` (one-event bursts), then time
    every burst of the second half after its gap. ``pfeed`` None = as a worker runs."""
    from stream.adapters.gc_pauses import as_worker
    from stream.bench.inprocess import BurstRunner, build_engine, burst_windows, encode
    from stream.bench.workload import WorkloadConfig, generate_events, load_catalog
    from stream.settings import Settings

    cfg = WorkloadConfig(items=3000, users=2000, seed=seed)
    catalog = load_catalog(cfg)
    settings = Settings()
    runner = BurstRunner(build_engine(catalog, pfeed=settings.pfeed if pfeed is None else pfeed))
    windows = burst_windows(encode(generate_events(catalog, cfg, events)), 1)
    half = len(windows) // 2
    print(f"[wake] warming on {half:,} bursts ...", flush=True)
    for window in windows[:half]:
        runner.run_window(window)
    timed = windows[half:]
    cpu_us: dict[float, list[float]] = {gap: [] for gap in gaps}
    print(
        f"[wake] timing {len(timed):,} bursts, gaps {list(gaps)} ms in turn, {BLOCK} each ...",
        flush=True,
    )
    with as_worker(settings.gc_freeze, settings.gc_gen0_threshold):  # the worker's collector
        for i, (gap, window) in enumerate(zip(assign(len(timed), gaps), timed, strict=True)):
            pause(gap, spin)
            start = time.thread_time()
            runner.run_window(window)
            if counted(i):
                cpu_us[gap].append((time.thread_time() - start) * 1e6)
            if progress_every and (i + 1) % progress_every == 0:
                print(f"[wake] {i + 1:,} / {len(timed):,}", flush=True)
    return {"events": events, "seed": seed, "spin": spin, **summarise(cpu_us)}


def plot(result: dict[str, Any], path: Path) -> Path:
    from stream.bench.plots import _save, plt

    rows = result["gaps"]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    labels = [f"{r['gap_ms']:g} ms" for r in rows]
    bars = ax.bar(labels, [r["mean_us"] for r in rows], color="#4c72b0")
    for bar, row in zip(bars, rows, strict=True):
        text = f"{row['ratio']:.2f}×" if row["ratio"] is not None else ""
        xy = (bar.get_x() + bar.get_width() / 2, bar.get_height())
        ax.annotate(text, xy, ha="center", va="bottom", xytext=(0, 2), textcoords="offset points")
    ax.set_ylim(0, max(r["mean_us"] for r in rows) * 1.15 if rows else 1)
    how = "busy-waited" if result.get("spin") else "asleep"
    ax.set_xlabel(f"pause before each one-event burst ({how})")
    ax.set_ylabel("CPU a burst (µs, mean)")
    ax.set_title("The same engine work after a pause (in process)")
    return _save(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=6000, help="workload size (half warms)")
    parser.add_argument("--gaps", default=",".join(f"{g:g}" for g in GAPS_MS), help="ms, comma")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--spin", action="store_true", help="busy-wait the gaps, not sleep")
    parser.add_argument("--out", type=Path, default=Path("reports/wake"))
    args = parser.parse_args(argv)
    gaps = [float(g) for g in args.gaps.split(",") if g.strip()]
    if any(g < 0 for g in gaps):
        parser.error("gaps must be >= 0")
    result = measure(args.events, gaps, args.seed, args.spin)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "wake_cost_spin" if args.spin else "wake_cost"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    png = plot(result, args.out / f"{name}.png")
    print(json.dumps(result, indent=2))
    print(f"[wake] wrote {args.out / (name + '.json')} and {png}", flush=True)


if __name__ == "__main__":
    main()
