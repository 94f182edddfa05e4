"""What a steady stream's event costs as the shop's users build up a history, in process.

Why this exists: the bench's steady figure (``inprocess.measure_steady``) is taken on users
with short histories (~18 events each on the quick workload), and a real shop's returning
customers have longer ones. Every part of a ranking that walks the user's history (the
query set's relation rows, the learned rates of what they viewed and bought, the affinity
features, the stored profile itself) then costs more, and a capacity derived from the short
histories over-states what one worker holds. Scratch runs on Dec 7 found ~500 µs of CPU an
event at ~18 events a user and ~1,250 µs at ~100.

The tool feeds one long stream of the bench's workload (real Complete Journey products, Zipf
users and items, bursty sessions) through the in-process runner in a steady stream's
windows (``inprocess.STEADY_WINDOW`` events: ~1.5 events a burst) on a fresh engine, and
times it in ``segments``: per segment the CPU an event, and the histories of the users it
served (events, query set, long-term features, stored bytes). It then separates the two
things that grow together, the users' histories and what the engine learned from them
(co-occurrence, rates, popularity): a control segment of *new* users (the same sessions
under other user ids) on the engine as it ended. If that costs what the first segment did,
the growth is the users' histories; if what the last did, the engine's.

Run::

    python -m stream.bench.maturity --out reports/maturity

It writes ``maturity.json`` and ``maturity.png`` there (~1 min with 36,000 events).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: the user id prefix of the control segment's users (none of the workload's ids has it)
FRESH_PREFIX = "fresh-"


def history_of(runner: Any, users: Sequence[str]) -> dict[str, float]:
    """Mean history of ``users`` as their stored profiles hold it now."""
    from stream.domain.profile import UserProfile

    raws = [raw for raw in (runner.store.get(u) for u in users) if raw is not None]
    if not raws:
        return {"users": 0, "events": 0.0, "queries": 0.0, "long_features": 0.0, "bytes": 0.0}
    profiles = [UserProfile.from_bytes(raw) for raw in raws]
    return {
        "users": len(raws),
        "events": round(statistics.fmean(p.events for p in profiles), 1),
        "queries": round(statistics.fmean(len(p.queries) for p in profiles), 1),
        "long_features": round(statistics.fmean(len(p.long_term) for p in profiles), 1),
        "bytes": round(statistics.fmean(len(raw) for raw in raws), 1),
    }


def run_segment(runner: Any, events: list[dict[str, Any]], window: int) -> dict[str, Any]:
    """``events`` in steady windows under the worker's collector: CPU an event and the
    histories of the users served, as they stand after the segment."""
    from stream.adapters.gc_pauses import as_worker
    from stream.bench.inprocess import burst_windows, encode
    from stream.settings import Settings

    windows = burst_windows(encode(events), window)
    settings = Settings()
    with as_worker(settings.gc_freeze, settings.gc_gen0_threshold):
        started = time.process_time()
        bursts = sum(len(runner.run_window(w)) for w in windows)
        cpu = time.process_time() - started
    users = list(dict.fromkeys(str(e["user_id"]) for e in events))
    return {
        "events": len(events),
        "bursts": bursts,
        "cpu_us_per_event": round(cpu * 1e6 / max(1, len(events)), 1),
        "history": history_of(runner, users),
    }


def measure(
    events: int, segments: int, seed: int = 7, users: int = 1000, pfeed: bool | None = None
) -> dict[str, Any]:
    """The segments of one stream on a fresh engine, then the control segment of new users.
    ``pfeed`` None: as a worker runs by default (``Settings.pfeed``)."""
    from stream.bench.inprocess import STEADY_WINDOW, BurstRunner, build_engine
    from stream.bench.workload import WorkloadConfig, generate_events, load_catalog
    from stream.settings import Settings

    if segments < 1 or events < segments:
        raise ValueError("need at least one segment and one event per segment")
    cfg = WorkloadConfig(items=3000, users=users, seed=seed)  # the quick bench's catalog
    catalog = load_catalog(cfg)
    stream = list(generate_events(catalog, cfg, events))
    pfeed = Settings().pfeed if pfeed is None else pfeed
    runner = BurstRunner(build_engine(catalog, pfeed=pfeed))
    size = len(stream) // segments
    rows = []
    for n in range(segments):
        part = stream[n * size : (n + 1) * size]
        row = run_segment(runner, part, STEADY_WINDOW)
        rows.append(row)
        print(
            f"[maturity] segment {n + 1}/{segments}: {row['cpu_us_per_event']:,.0f} µs an "
            f"event, users' histories {row['history']['events']:.0f} events",
            flush=True,
        )
    fresh = [e | {"user_id": FRESH_PREFIX + str(e["user_id"])} for e in stream[:size]]
    control = run_segment(runner, fresh, STEADY_WINDOW)
    print(
        f"[maturity] new users on the engine as it ended: "
        f"{control['cpu_us_per_event']:,.0f} µs an event",
        flush=True,
    )
    first, last = rows[0]["cpu_us_per_event"], rows[-1]["cpu_us_per_event"]
    return {
        "events": len(stream),
        "users": cfg.users,
        "window": STEADY_WINDOW,
        "segments": rows,
        "new_users_at_end": control,
        "last_vs_first": round(last / first, 2) if first > 0 else None,
        "new_users_vs_first": (
            round(control["cpu_us_per_event"] / first, 2) if first > 0 else None
        ),
    }


def plot(result: dict[str, Any], path: Path) -> Path:
    """CPU an event against the users' mean history, and the control as one point."""
    from stream.bench.plots import _save, plt

    rows = result["segments"]
    x = [r["history"]["events"] for r in rows]
    y = [r["cpu_us_per_event"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, y, marker="o", label="segments of one stream (a fresh engine at the start)")
    control = result["new_users_at_end"]
    ax.scatter(
        [control["history"]["events"]],
        [control["cpu_us_per_event"]],
        color="tab:red",
        zorder=3,
        label="new users, on the engine as it ended",
    )
    ax.set_xlabel("mean events in the served users' profiles after the segment")
    ax.set_ylabel("µs of CPU an event (in process)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"A steady stream's event as histories grow ({result['last_vs_first']}×)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=36_000, help="events in the stream")
    parser.add_argument("--segments", type=int, default=9, help="timed segments")
    parser.add_argument("--seed", type=int, default=7, help="the workload's seed")
    parser.add_argument("--out", type=Path, default=Path("reports/maturity"))
    args = parser.parse_args(argv)
    result = measure(args.events, args.segments, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "maturity.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "maturity.png")
    print(f"[maturity] wrote {args.out}/maturity.json and {args.out}/maturity.png", flush=True)


if __name__ == "__main__":
    main()
