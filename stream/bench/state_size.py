"""State bytes per user, and the RSS of a process holding 10k / 100k / 1M users in RocksDB.

Bytes per user: the serialized profiles of every user after the in-process run (a realistic
history at default bounds), plus the heavy user of ``scaling`` (every bound filled).

RSS: a child process per size (so sizes do not share a heap) loads the catalog into an
``Engine``, fills a RocksDB ``RocksStore`` (rocksdict, the tools' store; a worker's Faust table
uses the same engine) with N users — real profiles of the in-process run, user id rewritten,
cycled — then serves ``sample`` random users (read → one click → rank → write), as a worker
would. It reports RSS before the fill, after it, and after serving, and the store's size on
disk, and how long rebuilding the stock index over those users takes (``StockIndex``: the
last list of every local user, read after a restart) against decoding every profile in full,
its cost before the list moved into the stored header. Usage::

    python -m stream.bench.state_size --users N --templates FILE --catalog FILE --dir DIR \
        --result FILE
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stream.adapters.state_store import RocksStore, StateStore
from stream.bench.context import BenchContext, say
from stream.bench.inprocess import BurstRunner, build_engine, encode
from stream.bench.loadgen import read_jsonl
from stream.bench.procstat import rss_bytes
from stream.bench.supervisor import wait_for
from stream.domain.holders import Holders
from stream.domain.profile import UserProfile, decode_stored, encode_stored
from stream.stock_index import StockIndex


def profile_sizes(store: StateStore) -> dict[str, float]:
    keys = list(store.keys())
    sizes = np.asarray([len(store.get(k) or b"") for k in keys], dtype=np.float64)
    if sizes.size == 0:
        return {"users": 0}
    p50, p95 = np.percentile(sizes, [50, 95]).tolist()
    return {
        "users": int(sizes.size),
        "mean": round(float(sizes.mean()), 1),
        "p50": round(p50, 1),
        "p95": round(p95, 1),
        "max": int(sizes.max()),
    }


#: the bounded parts of a stored profile (``UserProfile.to_dict`` keys) and what bounds them
PARTS = {
    "l": "long_term (max_long_features)",
    "s": "session (max_session_features)",
    "fs": "firsts (first_seen.MAX_ITEMS)",
    "q": "queries (max_query_items)",
    "tl": "timeline (pairing: time window, <= RETAIN_MAX)",
    "p": "purchases (max_purchases)",
    "r": "returned (max_returned)",
    "li": "last_items (list length)",
    "o": "offsets (source partitions)",
    "d": "seen (dedup: time window, max_seen)",
}


def profile_parts(raw: bytes) -> dict[str, dict[str, int]]:
    """What each bounded part of a stored profile costs: its entries, and the stored bytes it
    adds (the stored size minus the size without it, so shared compression is accounted)."""
    body = decode_stored(raw)
    full = len(encode_stored(body))
    out = {}
    for key, name in PARTS.items():
        if key in body:
            without = len(encode_stored({k: v for k, v in body.items() if k != key}))
            out[name] = {"entries": len(body[key]), "bytes": full - without}
    return out


def write_templates(store: StateStore, path: Path, limit: int = 2000) -> int:
    """Up to ``limit`` stored profiles, one JSON line each (orjson never emits newlines)."""
    raws = [store.get(k) for k in list(store.keys())[:limit]]
    lines = [orjson.dumps(decode_stored(raw)) for raw in raws if raw]
    path.write_bytes(b"\n".join(line for line in lines if line))
    return len(lines)


def fill_and_serve(
    users: int, templates: list[bytes], directory: Path, catalog: Path, sample: int
) -> dict[str, Any]:
    engine = build_engine(read_jsonl(catalog))
    rss0 = rss_bytes()
    store = RocksStore(directory)
    started = time.perf_counter()
    bodies = [orjson.loads(t) for t in templates]
    for i in range(users):
        body = bodies[i % len(bodies)]
        body["u"] = f"s{i}"
        store.set(f"s{i}", UserProfile.from_dict(body).to_bytes())
    fill_s = time.perf_counter() - started
    rss_filled = rss_bytes()
    runner = BurstRunner(engine, store)
    rng = np.random.default_rng(0)
    item_ids = engine.catalog.ids
    started = time.perf_counter()
    for n, i in enumerate(rng.integers(users, size=sample).tolist()):
        click: dict[str, Any] = {"topic": "clicks", "event_id": f"rss{n}", "user_id": f"s{i}"}
        click |= {"item_id": item_ids[n % len(item_ids)], "ts": 1_767_225_600_000 + n}
        runner.run(encode([click]))
    serve_s = time.perf_counter() - started
    rss_served = rss_bytes()
    rebuild = time_stock_index(store, min(users, FULL_DECODE_SAMPLE))
    store.close()
    disk = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    return {
        "users": users,
        "rss_mb_before_fill": round(rss0 / 2**20, 1),
        "rss_mb_after_fill": round(rss_filled / 2**20, 1),
        "rss_mb_after_serving": round(rss_served / 2**20, 1),
        "disk_mb": round(disk / 2**20, 1),
        "fill_s": round(fill_s, 2),
        "served": sample,
        "serve_us_per_user": round(serve_s / max(1, sample) * 1e6, 1),
        **rebuild,
    }


#: users whose profiles the baseline decodes in full (its cost per user does not depend on
#: how many there are; decoding 1M would add a minute to the bench)
FULL_DECODE_SAMPLE = 50_000


def time_stock_index(store: StateStore, sample: int) -> dict[str, float]:
    """The stock index rebuild after a restart over every stored user: its duration and the
    longest the event loop waited for it (a ticker task's largest gap); next to it, in the same
    run, what the rebuild before cost per user (each profile decoded in full, no yield)."""

    async def rebuild() -> tuple[float, float]:
        index, done, gaps = StockIndex(store), asyncio.Event(), [0.0]

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0)
                now = time.perf_counter()
                gaps[0], last = max(gaps[0], now - last), now

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        await index.ensure()
        took = time.perf_counter() - started
        done.set()
        await task
        return took, gaps[0]

    took, gap = asyncio.run(rebuild())
    users = sum(1 for _ in store.owned())
    started, old = time.perf_counter(), Holders()
    for n, (partition, key) in enumerate(store.owned()):
        if n >= sample:
            break
        raw = store.get(key, partition=partition)
        if raw is not None:  # the rebuild before: every profile decoded, in one go
            old.update(key, UserProfile.from_bytes(raw).last_items)
    full_us = (time.perf_counter() - started) / max(1, min(sample, users)) * 1e6
    return {
        "index_rebuild_s": round(took, 3),
        "index_rebuild_us_per_user": round(took / max(1, users) * 1e6, 2),
        "index_max_loop_block_ms": round(gap * 1000, 2),
        "full_decode_us_per_user": round(full_us, 2),
    }


def _finished(result: Path, proc: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: result.exists() or proc.poll() is not None


def run_rss(
    ctx: BenchContext, templates: Path, sizes: tuple[int, ...], catalog: Path, sample: int
) -> list[dict[str, Any]]:
    """One child process per size, one after the other; each store deleted afterwards."""
    results = []
    for users in sizes:
        say(f"[state] RSS with {users:,} users in RocksDB ...")
        directory = ctx.run_dir / f"rocks-{users}"
        shutil.rmtree(directory, ignore_errors=True)
        result = ctx.run_dir / f"rss-{users}.json"
        result.unlink(missing_ok=True)
        argv = ["-m", "stream.bench.state_size", "--users", str(users)]
        argv += ["--templates", str(templates), "--dir", str(directory), "--result", str(result)]
        argv += ["--catalog", str(catalog), "--sample", str(sample)]
        proc = ctx.supervisor.spawn(argv, ctx.env("state-", "state"), ctx.log("state"))
        with ctx.supervisor.running(proc):
            wait_for(_finished(result, proc), 3600, "state child")
        if not result.exists():
            raise RuntimeError(f"state child failed (see {ctx.log('state')})")
        body = orjson.loads(result.read_bytes())
        shutil.rmtree(directory, ignore_errors=True)
        say(
            f"[state] {users:,} users: RSS {body['rss_mb_after_serving']:.0f} MB, "
            f"disk {body['disk_mb']:.0f} MB"
        )
        results.append(body)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--templates", type=Path, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, required=True, help="catalog JSONL")
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    templates = [line for line in args.templates.read_bytes().split(b"\n") if line]
    body = fill_and_serve(args.users, templates, args.dir, args.catalog, args.sample)
    tmp = args.result.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(body))
    tmp.replace(args.result)


if __name__ == "__main__":
    main()
