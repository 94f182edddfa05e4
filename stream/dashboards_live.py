"""Render the committed dashboard PNGs from a live run (``make dashboards``).

Starts the bundled broker, one worker serving /metrics, and a private Prometheus scraping it
every second; replays Complete Journey baskets (84.51°, simulated from real shopping patterns)
at a steady rate with a few malformed messages and one stock-out mixed in, so every panel has
something true to show; renders every dashboard with ``stream.dashboards``; stops everything by
PID (also on SIGTERM / Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from stream.broker import LocalBroker, free_port, start_broker
from stream.dashboards import DASHBOARD_DIR, render_all
from stream.local_prometheus import LocalPrometheus, scrape_config, start_prometheus
from stream.local_worker import spawn_worker, stop_worker, wait_ready
from stream.settings import Settings

FEEDS = "for_you,deals_for_you,new_for_you"


#: variant B and the shadow both weigh popularity up: a plausible experiment to watch
EXPERIMENT: list[tuple[str, Any]] = [
    (
        "ranking-profiles",
        (
            b"default",
            orjson.dumps(
                {
                    "name": "default",
                    "version": 2,
                    "variants": [
                        {"name": "A", "share": 0.5},
                        {"name": "B", "share": 0.5, "weights": {"popularity": 3.0}},
                    ],
                }
            ),
        ),
    ),
    (
        "ranking-profiles",
        (
            b"popular",
            orjson.dumps(
                {"name": "popular", "version": 1, "shadow": True, "weights": {"popularity": 3.0}}
            ),
        ),
    ),
]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _traffic(events: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """The replayed records plus, every ``every`` records, one malformed message and a
    producer's re-send of the latest order (skipped as a duplicate) and, halfway, the most
    bought item going out of stock (users holding it get a refreshed list)."""
    counts = Counter(
        i["item_id"] for e in events if e["topic"] == "orders" for i in e.get("items", ())
    )
    out: list[dict[str, Any]] = []
    last_order: dict[str, Any] | None = None
    for n, event in enumerate(events):
        out.append(event)
        if event["topic"] == "orders":
            last_order = event
        if n % every == every - 1:  # valid JSON, no user topic field: a schema violation
            out.append({"topic": "clicks", "user_id": "malformed", "event_id": f"bad-{n}"})
            if last_order is not None:
                out.append(dict(last_order))
        if n == len(events) // 2 and counts:
            item = counts.most_common(1)[0][0]
            out.append({"topic": "stock", "event_id": "stock-out", "item_id": item, "ts": 0,
                        "available": 0})  # fmt: skip
    return out


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def run(out: Path, seconds: float, rate: float, households: int) -> int:
    from stream.datasets import load_dataset
    from stream.replay import replay
    from stream.tools import produce
    from stream.worker import prepare

    work = Path(tempfile.mkdtemp(prefix="recstream-dashboards-"))
    broker: LocalBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    prom: LocalPrometheus | None = None
    signal.signal(signal.SIGTERM, _interrupt)  # the finally below stops what was started
    try:
        _say("[1/6] starting the bundled broker")
        broker = start_broker(free_port(), log_path=work / "broker.log")
        metrics_port = free_port()
        env = dict(
            os.environ,
            RECSTREAM_KAFKA_BOOTSTRAP=broker.bootstrap,
            RECSTREAM_DATA_DIR=str(work / "worker"),
            RECSTREAM_METRICS_PORT=str(metrics_port),
            RECSTREAM_FEEDS=FEEDS,
        )
        env.pop("RECSTREAM_QDRANT_URL", None)
        settings = Settings.from_env(env)
        asyncio.run(prepare(settings))
        _say(f"[2/6] loading Complete Journey ({households} households)")
        dataset = load_dataset("completejourney", max_households=households, deal_updates=False)
        events = list(dataset.events)[: int(seconds * rate)]
        asyncio.run(produce(settings, [("catalog", m) for m in dataset.catalog]))
        _say("[3/6] starting a worker")
        worker = spawn_worker(env, work / "worker.log")
        wait_ready(worker, work / "worker.log", progress=True)
        # an A/B split and a shadow profile, so the experiment panels have something to show
        asyncio.run(produce(settings, EXPERIMENT, raw=True))
        _say("[4/6] starting Prometheus (1 s scrapes, shipped alert rules)")
        prom = start_prometheus(scrape_config([f"127.0.0.1:{metrics_port}"], 1.0))
        _say(f"[5/6] replaying {len(events):,} events at {rate:.0f}/s")
        started = time.time()
        stats = asyncio.run(
            replay(_traffic(events, 200), bootstrap=broker.bootstrap, rate=rate, progress=True)
        )
        _say(stats.summary())
        if stats.interrupted:  # the replay reports a Ctrl-C / SIGTERM instead of raising it
            raise KeyboardInterrupt
        time.sleep(5.0)  # a few more scrapes after the last event
        _say("[6/6] rendering")
        render_all(prom.api.url, out, (time.time() - started + 10) / 60, DASHBOARD_DIR)
        return 0
    except KeyboardInterrupt:
        _say("interrupted; stopping")
        return 130
    finally:
        if prom is not None:
            prom.stop()
        if worker is not None:
            stop_worker(worker)
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="deploy/grafana/png")
    parser.add_argument("--seconds", type=float, default=150.0, help="replay length")
    parser.add_argument("--rate", type=float, default=150.0, help="events per second")
    parser.add_argument("--households", type=int, default=400)
    args = parser.parse_args()
    return run(Path(args.out), args.seconds, args.rate, args.households)


if __name__ == "__main__":
    sys.exit(main())
