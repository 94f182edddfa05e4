"""What user batches wait while a catalog update goes into the Pfeed lookup: staged, copy, loop.

Why this exists: a worker enters catalog changes (new items, changed titles, brands, prices)
into its query→target lookup before it ranks the next user batch. An update of ~1,000 items
into a 68k-item lookup is ~1.5 s of CPU (embedding, the new rows, the rows it enters). On the
event loop that was a stall of every user batch behind it; now the update is computed on a
copy of the lookup in a thread and swapped in whole, and ranking reads the rows in use
meanwhile (``PfeedRuntime.sync``). Both run here, alternating, in one process:

* a catalog of ``--items`` Complete Journey products (the bench workload's sample), its lookup
  built and the engine warmed with half of a seeded workload's user bursts;
* an event loop with a heartbeat every millisecond (its lateness is the loop's stall) and a
  user batch every ``--interval-ms`` (the pipeline's ``before_rank``, then one user burst of
  the workload through ``BurstRunner``, as a worker ranks it); its delay is when it finished
  against when it was due;
* half a second in, ``--changed`` products arrive with a changed title (another product's:
  new content tokens, so each is embedded and re-entered); the run ends half a second after
  the update is in use.

Modes: ``thread`` (what a worker does: the update staged beside the lookup in use, then its
rows written into it, ``stream.domain.lookup_patch``), ``copy`` (in the thread on a full copy
of the lookup, swapped in whole: the behaviour before, ``LiveLookup.staged = False``) and
``loop`` (``PfeedRuntime.threaded = False``: the update computed on the loop in place, the
behaviour before that). Rounds rotate the order of the three. Run::

    python -m stream.bench.catalog_churn --out reports/churn

It writes ``catalog_churn.json``, ``.md`` and ``.png`` (~1 minute at 20,000 items).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stream.adapters.pfeed_runtime import PfeedRuntime
from stream.bench.inprocess import BurstRunner, build_engine, bursts, encode
from stream.bench.workload import WorkloadConfig, generate_events, load_catalog
from stream.settings import Settings

ITEMS = 20_000
CHANGED = 1_024
#: workload events: the first half's bursts warm the engine, the second's are the user batches
EVENTS = 20_000
INTERVAL_MS = 10.0
ROUNDS = 2
#: what a worker does; the thread on a full copy (before); the loop in place (before that)
MODES = ("thread", "copy", "loop")
ARRIVE_S = 0.5
AFTER_S = 0.5
GIVE_UP_S = 300.0
#: the plot's lowest delay (a log axis)
FLOOR_MS = 0.5


def say(text: str) -> None:
    print(f"[churn] {text}", flush=True)


class Scene:
    """The engine, its Pfeed runtime and a stream of user bursts, shared by every run."""

    def __init__(self, items: int, events: int = EVENTS, seed: int = 7) -> None:
        cfg = WorkloadConfig(items=items, users=2000, seed=seed)
        self.catalog = load_catalog(cfg)
        engine = build_engine(self.catalog)
        self.tmp = tempfile.TemporaryDirectory(prefix="recstream-churn-")
        self.runtime = PfeedRuntime(Settings(data_dir=Path(self.tmp.name)), engine)
        for message in self.catalog:
            self.runtime.on_item("catalog", message)
        say(f"{items:,} items: embedding and building the lookup ...")
        started = time.perf_counter()
        asyncio.run(self.runtime.start())
        say(f"lookup ready in {time.perf_counter() - started:.1f} s ({self.runtime.source})")
        self.runner = BurstRunner(engine)
        stream = bursts(encode(generate_events(self.catalog, cfg, events)), 1)
        half = len(stream) // 2
        for burst in stream[:half]:
            self.runner.run(burst)
        self.bursts = stream[half:]
        self.next = 0

    def burst(self) -> Any:
        self.next = (self.next + 1) % len(self.bursts)
        return self.bursts[self.next]

    def changes(self, count: int, shift: int) -> list[dict[str, Any]]:
        """``count`` products spread over the catalog, each given the title of the product
        ``shift`` places on (known words: new content tokens, so each is embedded again)."""
        n = len(self.catalog)
        picks = np.linspace(0, n - 1, num=count).astype(int)
        out = []
        for i in picks.tolist():
            message = dict(self.catalog[i])
            message["title"] = self.catalog[(i + shift) % n].get("title") or "untitled"
            out.append(message)
        return out


async def one_run(scene: Scene, changes: list[dict[str, Any]], interval_s: float) -> dict:
    """One update while user batches and the heartbeat run; times relative to its arrival."""
    rt = scene.runtime
    assert rt.live is not None
    lags: list[tuple[float, float]] = []
    delays: list[tuple[float, float]] = []
    done = asyncio.Event()
    t0 = time.perf_counter()

    async def heartbeat() -> None:
        due = time.perf_counter()
        while not done.is_set():
            due += 0.001
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            now = time.perf_counter()
            lags.append((now - t0, (now - due) * 1e3))
            due = max(due, now - 0.001)

    async def users() -> None:
        due = time.perf_counter()
        while not done.is_set():
            due += interval_s
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            rt.sync()  # the pipeline's before_rank
            scene.runner.run(scene.burst())
            now = time.perf_counter()
            delays.append((now - t0, (now - due) * 1e3))
            due = max(due, now - interval_s)

    rt.rested()  # (each run's update starts at the first user batch after the arrival)
    tasks = [asyncio.ensure_future(heartbeat()), asyncio.ensure_future(users())]
    await asyncio.sleep(ARRIVE_S)
    arrived = time.perf_counter()
    before = rt.live.version
    for message in changes:  # what the catalog replica does (on the loop, both modes)
        rt.engine.catalog.upsert(message)
        rt.on_item("catalog", message)
    taken_in = time.perf_counter() - arrived
    while rt.updating or rt.live.version == before:
        if time.perf_counter() - arrived > GIVE_UP_S:
            raise RuntimeError(f"the update was not in use after {GIVE_UP_S} s")
        await asyncio.sleep(0.005)
    in_use = time.perf_counter()
    await asyncio.sleep(AFTER_S)
    done.set()
    await asyncio.gather(*tasks)
    return summary(lags, delays, arrived - t0, in_use - t0) | {
        "replica_took_in_ms": round(taken_in * 1e3, 1)
    }


def summary(
    lags: list[tuple[float, float]], delays: list[tuple[float, float]], arrived: float, used: float
) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        arr = np.asarray(values)
        return {
            "n": int(arr.size),
            "p50": round(float(np.percentile(arr, 50)), 2),
            "p99": round(float(np.percentile(arr, 99)), 2),
            "max": round(float(arr.max()), 2),
        }

    during = [d for t, d in delays if arrived <= t <= used + 0.1]
    quiet = [d for t, d in delays if t < arrived]
    return {
        "update_in_use_s": round(used - arrived, 3),
        "loop_stall_max_ms": round(max(v for _, v in lags), 1),
        "batch_delay_ms_during": stats(during),
        "batch_delay_ms_before": stats(quiet),
        "timeline": {
            "heartbeat": [(round(t - arrived, 4), round(v, 2)) for t, v in lags],
            "batches": [(round(t - arrived, 4), round(v, 2)) for t, v in delays],
        },
    }


def measure(
    items: int, changed: int, interval_ms: float, rounds: int, events: int = EVENTS
) -> dict[str, Any]:
    scene = Scene(items, events)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    live = scene.runtime.live
    assert live is not None
    for r in range(rounds):
        for mode in MODES[r % len(MODES) :] + MODES[: r % len(MODES)]:
            scene.runtime.threaded, live.staged = mode != "loop", mode == "thread"
            shift = 1 + sum(len(done) for done in runs.values())
            changes = scene.changes(changed, shift)
            result = asyncio.run(one_run(scene, changes, interval_ms / 1e3))
            runs[mode].append(result)
            say(
                f"round {r + 1}/{rounds} {mode}: in use after {result['update_in_use_s']} s, "
                f"loop stall max {result['loop_stall_max_ms']} ms, batch delay p99 "
                f"{result['batch_delay_ms_during'].get('p99')} ms"
            )
    scene.tmp.cleanup()
    return {
        "items": items,
        "changed": changed,
        "interval_ms": interval_ms,
        "rounds": rounds,
        "runs": runs,
        "summary": {mode: _medians(rs) for mode, rs in runs.items()},
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    def med(values: list[float]) -> float:
        return round(float(np.median(values)), 2)

    return {
        "update_in_use_s": med([r["update_in_use_s"] for r in runs]),
        "loop_stall_max_ms": med([r["loop_stall_max_ms"] for r in runs]),
        "batch_delay_p99_ms": med([r["batch_delay_ms_during"]["p99"] for r in runs]),
        "batch_delay_max_ms": med([r["batch_delay_ms_during"]["max"] for r in runs]),
        "batch_delay_p99_before_ms": med([r["batch_delay_ms_before"]["p99"] for r in runs]),
        "replica_took_in_ms": med([r["replica_took_in_ms"] for r in runs]),
    }


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    head = (
        f"# Catalog update while serving: staged in a thread, on a copy, on the event loop\n\n"
        f"{result['changed']:,} changed products (new titles) entered into the lookup of a "
        f"{result['items']:,}-item catalog while a user batch is due every "
        f"{result['interval_ms']} ms; medians of {result['rounds']} runs per mode in rotating "
        f"order, one process.\n\n"
        "| mode | update in use after s | longest loop stall ms | batch delay p99 ms "
        "(during) | batch delay max ms (during) | batch delay p99 ms (before) | the replica "
        "taking the messages in, ms |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = [
        f"| {mode} | {m['update_in_use_s']} | {m['loop_stall_max_ms']} | "
        f"{m['batch_delay_p99_ms']} | {m['batch_delay_max_ms']} | "
        f"{m['batch_delay_p99_before_ms']} | {m['replica_took_in_ms']} |"
        for mode, m in s.items()
    ]
    ratio = s["loop"]["loop_stall_max_ms"] / max(0.1, s["thread"]["loop_stall_max_ms"])
    staged, copied = s["thread"]["loop_stall_max_ms"], s["copy"]["loop_stall_max_ms"]
    tail = (
        f"\n\nLongest stall on the loop: {ratio:.1f}× shorter with the thread than on the "
        f"loop; staged (the thread mode) {staged} ms against {copied} ms on a full copy. "
        "Every mode includes the catalog replica taking the messages in on the loop (last "
        "column): the bench hands it the whole update at once.\n\n"
        "![loop lateness around the update](catalog_churn.png)\n"
    )
    return head + "\n".join(rows) + tail


def plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for color, mode in (("C3", "loop"), ("C2", "copy"), ("C0", "thread")):
        run = result["runs"][mode][0]
        xs, ys = zip(*run["timeline"]["batches"], strict=True)
        ys = tuple(max(FLOOR_MS, y) for y in ys)
        ax.plot(xs, ys, ".", ms=3, color=color, label=f"{mode}: user batch delay")
        ax.axvline(run["update_in_use_s"], color=color, ls=":", lw=1)
    ax.axvline(0, color="k", lw=1, label="update arrives")
    ax.set_yscale("log")
    ax.set_ylim(bottom=FLOOR_MS)
    ax.set_xlabel("seconds from the update's arrival (dotted: rows in use)")
    ax.set_ylabel(f"user batch finished late, ms (≥ {FLOOR_MS})")
    ax.set_title(f"{result['changed']:,} catalog changes into a {result['items']:,}-item lookup")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/churn"))
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--changed", type=int, default=CHANGED)
    parser.add_argument("--interval-ms", type=float, default=INTERVAL_MS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--events", type=int, default=EVENTS)
    args = parser.parse_args(argv)
    result = measure(args.items, args.changed, args.interval_ms, args.rounds, args.events)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "catalog_churn.json").write_text(json.dumps(result) + "\n")
    (args.out / "catalog_churn.md").write_text(markdown(result))
    plot(result, args.out / "catalog_churn.png")
    say(f"wrote {args.out}/catalog_churn.json, .md and .png")


if __name__ == "__main__":
    main()
