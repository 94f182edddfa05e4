"""Restart time of a worker whose `learned` topic holds N observations: snapshot vs full replay.

Starts its own bundled broker, publishes the bench workload's catalog (Complete Journey
products) and N synthetic observations on `learned` (Zipf items, sessions of a few items whose
later items pair with the earlier ones, as ``stream.domain.pairing`` publishes them), then starts
one worker after the other on the same data dir, alternating: snapshots off (every start reads
`learned` from the beginning — the baseline) and on (the start restores the snapshot the
previous clean stop wrote). The very first "on" start has no snapshot yet: it replays and writes
one at its stop; it is reported apart. Measured per start: seconds from spawn to the catalog
replica being ready (catalog and `learned` read) and to the worker serving (group joined and
engine prepared, ``stream.readiness``), and the snapshot's size and write time from the worker's
log. Usage::

    python -m stream.bench.restart [--observations 300000] [--pairs 2] [--out reports/bench/restart]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer

from stream.adapters.topics import ensure_topics
from stream.bench.context import BenchContext, say
from stream.bench.supervisor import Supervisor, wait_for
from stream.bench.workload import WorkloadConfig, load_catalog
from stream.domain.learning import Observation
from stream.local_worker import spawn_worker, wait_ready
from stream.settings import Settings
from stream.tools import replay_to

PREFIX = "restart-"
_REPLICA = re.compile(r"catalog replica ready: \d+ items, (\d+) learned observations applied")
_WRITTEN = re.compile(
    r"learned snapshot written: \d+ observations applied, ([\d.]+) KB, (\d+) ms "
    r"\((\d+) ms of it on the event loop\)"
)


def observations(item_ids: list[str], n: int, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """``n`` (key, value) messages for `learned`: sessions of 1-6 items on 16 source partitions."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(item_ids) + 1)
    weights /= weights.sum()
    offsets = [0] * 16
    made, ts = 0, 1_700_000_000_000
    while made < n:
        partition = int(rng.integers(0, 16))
        session = [item_ids[int(i)] for i in rng.choice(len(item_ids), 6, p=weights)]
        for k in range(min(int(rng.integers(1, 7)), n - made)):
            ts += int(rng.integers(1, 2000))
            topic = "orders" if rng.random() < 0.05 else "clicks"
            pairs = tuple((earlier, session[k], 1.0) for earlier in session[max(0, k - 3) : k])
            source = ("clicks", partition, offsets[partition])
            offsets[partition] += 1
            obs = Observation(source, (session[k],), (), 1.0, topic, ts, "", pairs)
            yield (obs.source_key or "").encode(), obs.to_bytes()
            made += 1


async def publish(settings: Settings, messages: Iterator[tuple[bytes, bytes]], n: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        topic, pending, step = settings.topic("learned"), [], max(1, n // 10)
        for done, (key, value) in enumerate(messages, 1):
            pending.append(await producer.send(topic, value, key=key))
            if done % step == 0 or done == n:
                await asyncio.gather(*pending)
                pending.clear()
                say(f"[restart] published {done:,}/{n:,} observations")
    finally:
        await producer.stop()


def one_start(ctx: BenchContext, env: dict[str, str], label: str) -> dict[str, Any]:
    """Spawn, time the replica and the worker becoming ready, stop cleanly, read the log."""
    log = ctx.log("restart-worker")
    since = log.stat().st_size if log.exists() else 0
    started = time.monotonic()
    worker = ctx.supervisor.adopt(spawn_worker(env, log))

    def text() -> str:
        return log.read_text(errors="replace")[since:]

    with ctx.supervisor.running(worker):
        wait_for(lambda: _REPLICA.search(text()) is not None or worker.poll() is not None,
                 900, "catalog replica")  # fmt: skip
        replica_s = time.monotonic() - started
        wait_ready(worker, log, timeout=900, since=since)
        ready_s = time.monotonic() - started
    body = text()
    applied = _REPLICA.search(body)
    written = _WRITTEN.search(body)
    row = {
        "start": label,
        "replica_ready_s": round(replica_s, 2),
        "worker_ready_s": round(ready_s, 2),
        "applied": int(applied.group(1)) if applied else None,
        "restored": "learned snapshot restored" in body,
        "snapshot_kb": float(written.group(1)) if written else None,
        "snapshot_write_ms": int(written.group(2)) if written else None,
        "snapshot_loop_ms": int(written.group(3)) if written else None,
    }
    say(f"[restart] {label}: replica ready {replica_s:.1f} s, worker ready {ready_s:.1f} s, "
        f"restored={row['restored']}")  # fmt: skip
    return row


def run(ctx: BenchContext, n: int, pairs: int) -> dict[str, Any]:
    settings = ctx.settings(PREFIX)
    asyncio.run(ensure_topics(settings))
    catalog = load_catalog(WorkloadConfig())
    asyncio.run(replay_to(settings, catalog, total=len(catalog), progress=False))
    ids = [str(m["item_id"]) for m in catalog]
    asyncio.run(publish(settings, observations(ids, n), n))
    on = ctx.env(PREFIX, "restart", RECSTREAM_PFEED="0")
    off = dict(on, RECSTREAM_LEARNED_SNAPSHOT_S="0")
    rows = [one_start(ctx, on, "first (no snapshot yet)")]
    for k in range(pairs):
        rows.append(one_start(ctx, off, f"full replay #{k + 1}"))
        rows.append(one_start(ctx, on, f"from snapshot #{k + 1}"))
    full = [r["replica_ready_s"] for r in rows if r["start"].startswith("full")]
    snap = [r["replica_ready_s"] for r in rows if r["start"].startswith("from snapshot")]
    return {
        "observations": n,
        "rows": rows,
        "replica_ready_s": {"full_replay": full, "from_snapshot": snap},
        "speedup": round(float(np.median(full)) / max(1e-9, float(np.median(snap))), 2),
    }


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "restart.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    lines = [
        "# Worker restart: `learned` snapshot vs full replay",
        "",
        f"`python -m stream.bench.restart --observations {report['observations']}` · "
        f"{report['when']} · commit `{report['commit']}`",
        "",
        "| start | catalog replica ready s | worker ready s | observations applied | "
        "restored | snapshot KB | snapshot write ms | of which event loop ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['start']} | {r['replica_ready_s']} | {r['worker_ready_s']} | {r['applied']} "
            f"| {r['restored']} | {r['snapshot_kb'] or '-'} | {r['snapshot_write_ms'] or '-'} "
            f"| {r.get('snapshot_loop_ms') or '-'} |"
        )
    lines += ["", f"Median replica-ready time, full replay / from snapshot: "
              f"**{report['speedup']}×** (same run, alternating starts).", "",
              "![restart](restart.png)", ""]  # fmt: skip
    (out / "restart.md").write_text("\n".join(lines))
    _plot(report, out / "restart.png")


def _plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    colours = ["#999" if "first" in r["start"] else "#c55" if "full" in r["start"] else "#2a7"
               for r in rows]  # fmt: skip
    ax.bar([r["start"].replace(" (", "\n(") for r in rows],
           [r["replica_ready_s"] for r in rows], color=colours)  # fmt: skip
    ax.set_ylabel("spawn → catalog + learned read (s)")
    ax.set_title(f"Worker restart with {report['observations']:,} observations on `learned`")
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--observations", type=int, default=300_000)
    parser.add_argument("--pairs", type=int, default=2, help="full-replay / snapshot pairs")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/restart"))
    args = parser.parse_args(argv)
    from stream.bench.runner import _commit

    sup = Supervisor()
    sup.install()
    run_dir = Path(tempfile.mkdtemp(prefix="recstream-restart-"))
    try:
        broker = sup.broker(run_dir / "broker.log")
        ctx = BenchContext(sup, broker.bootstrap, broker.process.pid, run_dir)
        report = run(ctx, args.observations, args.pairs)
    finally:
        sup.close()
    sha, dirty = _commit()
    report["commit"] = sha + ("+dirty" if dirty else "")
    report["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_report(report, args.out)
    say(f"[restart] report in {args.out}/restart.md (speedup {report['speedup']}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
