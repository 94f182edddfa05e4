"""`recstream demo`: everything on embedded defaults, real data, live recommendations.

Starts what is missing (the bundled broker unless RECSTREAM_KAFKA_BOOTSTRAP is set; Qdrant Edge
unless RECSTREAM_QDRANT_URL is set; one worker), loads the 84.51° Complete Journey data
(simulated from real shopping patterns, per its authors), replays baskets as `orders` with
time compression and prints live lists with their latency. Every 15 s it also takes the item
most often shown out of stock, or brings the last one back (derived events, marked as such), to
show the stock logic, and,
half-way between, lets the shopper of the latest list search for their #1 item's kind filtered
to another brand (derived too), printing how much of their next list meets the filter.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from stream.bounded_run import run_bounded
from stream.broker import LocalBroker, free_port, port_open, start_broker, stop_groups
from stream.local_worker import scrape_metrics, spawn_worker, wait_ready
from stream.settings import Settings

STOCK_DEMO_EVERY_S = 15.0
#: the search demo runs as often, half a period after the stock demo
SEARCH_DEMO_EVERY_S = 15.0
#: how often the rolling summary line is printed, and the window its latency covers
SUMMARY_EVERY_S = 5.0


def _say(text: str) -> None:
    print(text, flush=True)


async def _derived(
    settings: Settings, topic: str, planned: tuple[dict[str, Any], str] | None
) -> None:
    """Say and send one of the demo's derived events (nothing when none was planned)."""
    from stream.tools import produce

    if planned is not None:
        event, text = planned
        _say(f"** demo: {text}")
        await produce(settings, [(topic, event)])


class LiveView:
    """Prints a sample of lists as they arrive and a rolling summary line."""

    def __init__(
        self, titles: dict[str, str], facts: dict[str, tuple[str, str]] | None = None
    ) -> None:
        self.titles = titles
        #: item id -> (product title, brand): what the search demo searches and filters by
        self.facts = facts or {}
        self.last: tuple[str, list[str]] | None = None  # the latest list: user, item ids
        #: user -> (brand filtered to, share of their list of that brand before the search)
        self.searched: dict[str, tuple[str, float]] = {}
        self.received = 0
        #: (arrival, latency ms) of recent lists: the summary shows the last ``window_s``, so
        #: a fresh worker's start-up backlog shows in the first lines, not in every later one
        self.latencies: collections.deque[tuple[float, float]] = collections.deque(maxlen=20_000)
        self.window_s = SUMMARY_EVERY_S
        self.shown_items: collections.Counter[str] = collections.Counter()
        self.last_print = 0.0
        self.stock_refreshes = 0
        #: items the stock demo took out, in order, and those still out (its next turn
        #: brings the oldest back)
        self.stocked_out: list[str] = []
        self.still_out: list[str] = []

    def on_message(self, message: dict[str, Any]) -> None:
        self.received += 1
        if "latency_ms" in message:
            self.latencies.append((time.monotonic(), float(message["latency_ms"])))
        items = message["items"]
        for item in items[:5]:
            self.shown_items[item["item_id"]] += 1
        trigger = message["trigger"]
        if trigger["topic"] == "stock":
            self.stock_refreshes += 1
        ids = [item["item_id"] for item in items]
        self.last = (message["user_id"], ids)
        now = time.monotonic()
        searched = (
            self.searched.pop(message["user_id"], None) if trigger["topic"] == "searches" else None
        )
        if now - self.last_print < 0.4 and trigger["topic"] != "stock" and searched is None:
            return
        self.last_print = now
        top = " · ".join(self.titles.get(i["item_id"], i["item_id"]) for i in items[:3])
        why = items[0]["reasons"][0] if items and items[0]["reasons"] else ""
        lat = f"{message['latency_ms']:>4} ms" if "latency_ms" in message else "   -   "
        _say(
            f"  {message['user_id']:<10} ← {trigger['topic']:<7} {lat} │ {top}\n"
            f"  {'':<10}   why #1: {why}"
        )
        if searched is not None:
            brand, before = searched
            after = self.brand_share(ids, brand)
            _say(f"  {'':<10}   brand {brand}: {after:.0%} of the top 10 (was {before:.0%})")

    def brand_share(self, ids: list[str], brand: str) -> float:
        top = ids[:10]
        return sum(self.facts.get(i, ("", ""))[1] == brand for i in top) / max(1, len(top))

    def plan_search(self, ts: int, tag: int) -> tuple[dict[str, Any], str] | None:
        """A search by the shopper of the latest list: their #1 item's title, filtered to the
        most common other brand (None when the catalog has no second brand)."""
        if self.last is None or not self.last[1] or self.last[1][0] not in self.facts:
            return None
        user, ids = self.last
        title, brand = self.facts[ids[0]]
        brands = collections.Counter(b for _, b in self.facts.values() if b and b != brand)
        if not brands:
            return None
        other = brands.most_common(1)[0][0]
        self.searched[user] = (other, self.brand_share(ids, other))
        event = {
            "event_id": f"demo-search-{user}-{tag}",
            "user_id": user,
            "ts": ts,
            "query": title,
            "filters": {"brand": other},
        }
        text = f"{user} searches '{title}' filtered to brand {other} (derived event)"
        return event, text + " → their list is re-ranked now"

    def plan_stock(self, ts: int, tag: int) -> tuple[dict[str, Any], str] | None:
        """The stock demo's next derived event, by turns: the item most often shown goes out
        of stock (never the same twice), then comes back (None: nothing shown yet)."""
        item: str | None
        if self.still_out:
            item, available = self.still_out.pop(0), 5
            text = "is back in stock (derived event) → the lists that lost it get it back now"
        else:
            shown = (i for i, _ in self.shown_items.most_common() if i not in self.stocked_out)
            item, available = next(shown, None), 0
            if item is None:
                return None
            self.stocked_out.append(item)
            self.still_out.append(item)
            text = "goes out of stock (derived event) → lists holding it are re-pushed now"
        event = {
            "event_id": f"demo-stock-{item}-{tag}",
            "item_id": item,
            # the replay's clock, not the wall clock: the baskets keep their dataset dates, and
            # a refresh ranks (and explains: "bought … days ago") at its trigger's time
            "ts": ts,
            "available": available,
        }
        return event, f"'{self.titles.get(item, item)}' ({item}) {text}"

    def summary(self, sent: int, now: float | None = None) -> str:
        since = (time.monotonic() if now is None else now) - self.window_s
        lat = sorted(ms for at, ms in self.latencies if at >= since)
        if lat:
            p50, p95 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.95))]
            lat_text = f"latency p50 {p50:.0f} ms p95 {p95:.0f} ms (last {self.window_s:.0f} s)"
        else:
            lat_text = "latency -"
        return (
            f"── events sent {sent:,} · lists received {self.received:,} · {lat_text} · "
            f"stock refreshes {self.stock_refreshes}"
        )


async def _live(
    settings: Settings,
    events: list[dict[str, Any]],
    titles: dict[str, str],
    facts: dict[str, tuple[str, str]],
    speed: float,
    seconds: float | None,
) -> LiveView:
    from stream.tools import TopicReader, replay_to

    view = LiveView(titles, facts)
    progress = {"sent": 0, "ts": 0}

    def counted() -> Any:
        for message in events:
            progress["sent"] += 1
            progress["ts"] = max(progress["ts"], int(message.get("ts") or 0))
            yield message

    replay_task = asyncio.create_task(
        replay_to(settings, counted(), partial=True, speed=speed, progress=False)
    )
    started = time.monotonic()
    last_summary = last_stock = started
    last_search = started - SEARCH_DEMO_EVERY_S / 2  # half-way between two stock demos
    async with TopicReader(settings, "recommendations") as reader:
        while seconds is None or time.monotonic() - started < seconds:
            for message in await reader.poll(100):
                view.on_message(message)
            reader.messages.clear()
            now = time.monotonic()
            if now - last_summary > SUMMARY_EVERY_S:
                _say(view.summary(progress["sent"]))
                last_summary = now
            ts = progress["ts"] or int(time.time() * 1000)
            if now - last_stock > STOCK_DEMO_EVERY_S:
                await _derived(settings, "stock", view.plan_stock(ts, int(now)))
                last_stock = now
            if now - last_search > SEARCH_DEMO_EVERY_S:
                await _derived(settings, "searches", view.plan_search(ts, int(now)))
                last_search = now
            if replay_task.done() and not reader.messages:
                exc = replay_task.exception()
                if exc is not None:
                    raise exc
                if replay_task.result().interrupted:  # a Ctrl-C that landed in its step
                    raise KeyboardInterrupt("replay interrupted")
    replay_task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await replay_task
    _say(view.summary(progress["sent"]))
    return view


def wait_items_consumed(
    worker: subprocess.Popen[bytes], port: int, published: int, timeout: float = 120.0
) -> None:
    """Wait until the worker's item group has validated the catalog just published.

    A fresh worker reads the whole catalog topic twice: its replica (applies every record) and
    its item group consumer (validation and dead letters, once per record across workers).
    When the latter was a Faust agent (~230 µs a record) the first lists waited ~4.4 s behind
    the catalog; it is now a bare aiokafka consumer and is usually done before the worker is
    ready (0.0 s here, 7.2 s before). Still shown as its own step: on a slower machine or a
    larger catalog the live latencies that follow should be the steady state's."""
    name = "recstream_events_consumed_total"
    started = time.monotonic()
    read = 0.0
    while time.monotonic() - started < timeout and worker.poll() is None:
        samples = scrape_metrics(port, [name]) or {}
        read = sum(v for k, v in samples.items() if k.startswith(name + '{topic="catalog"'))
        print(
            f"\r  the worker's item group validated {read:,.0f} / {published:,} catalog records "
            f"({time.monotonic() - started:.1f} s)",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if read >= published:
            break
        time.sleep(0.25)
    print(file=sys.stderr)


def run_demo(
    settings: Settings, seconds: float | None = None, households: int = 200, speed: float = 86400.0
) -> int:
    from stream.datasets import load_dataset
    from stream.tools import produce
    from stream.worker import prepare

    demo_dir = settings.data_dir / "demo"
    broker: LocalBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    if settings.kafka_bootstrap_explicit:
        # someone else's broker: never reuse old topics/offsets with a fresh state dir
        settings = settings.with_(topic_prefix=f"{settings.topic_prefix}demo{int(time.time())}-")
    try:
        shutil.rmtree(demo_dir, ignore_errors=True)
        demo_dir.mkdir(parents=True)
        if not settings.kafka_bootstrap_explicit:
            port = free_port() if port_open(9092) else 9092
            _say(f"[1/5] starting the bundled broker (Tansu) on 127.0.0.1:{port}")
            broker = start_broker(port, log_path=demo_dir / "broker.log")
            settings = settings.with_(kafka_bootstrap=broker.bootstrap)
        else:
            _say(f"[1/5] using the broker at {settings.kafka_bootstrap}")
        _say(
            f"[2/5] loading Complete Journey ({households} households; simulated from real "
            "shopping patterns by 84.51°)"
        )
        dataset = load_dataset("completejourney", max_households=households, deal_updates=False)
        # in memory up front: reading the cache lazily would stall the replay's event loop and
        # show up as latency that is not the engine's
        events = list(dataset.events)
        # Complete Journey titles are product types, shared by many products: add the id
        titles = {
            m["item_id"]: f"{str(m.get('title') or '')[:18].title()}#{m['item_id'][-4:]}"
            for m in dataset.catalog
        }
        asyncio.run(prepare(settings))
        _say(f"[3/5] publishing the catalog: {len(dataset.catalog):,} items")
        asyncio.run(produce(settings, [("catalog", m) for m in dataset.catalog]))
        qdrant = settings.qdrant_url or f"Qdrant Edge under {demo_dir / 'worker'}"
        _say(f"[4/5] starting a worker (state in RocksDB, lists to {qdrant})")
        env = dict(
            os.environ,
            RECSTREAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
            RECSTREAM_TOPIC_PREFIX=settings.topic_prefix,
            RECSTREAM_DATA_DIR=str(demo_dir / "worker"),
            RECSTREAM_METRICS_PORT=str(free_port()),
        )
        log_path = demo_dir / "worker.log"
        worker = spawn_worker(env, log_path)
        wait_ready(worker, log_path, progress=True)
        wait_items_consumed(worker, int(env["RECSTREAM_METRICS_PORT"]), len(dataset.catalog))
        _say(
            f"[5/5] replaying baskets at {speed:,.0f}x real time; live lists below "
            f"({'Ctrl-C stops' if seconds is None else f'{seconds:.0f} s'})"
        )
        # bounded exit: an interrupted asyncio.run waits without limit for cancelled Kafka client
        # tasks (6.8 s from SIGTERM to "stopping ..." seen with the load at 12 on 2 cores)
        facts = {
            m["item_id"]: (str(m.get("title") or ""), str(m.get("attributes", {}).get("brand", "")))
            for m in dataset.catalog
        }
        live = _live(settings, events, titles, facts, speed, seconds)
        view = run_bounded(live, grace_s=2.0)
        if view.received == 0:
            _say("no recommendations arrived: see " + str(log_path))
            return 1
        return 0
    except KeyboardInterrupt:
        _say("\nstopping ...")
        return 0
    finally:
        # worker and broker signalled at once, one shared 3 s grace, then SIGKILL (the state dir
        # is wiped at the next start): one after the other, with the worker's own 30 s grace, an
        # interrupted demo took up to 8.3 s of its 10 s with the load at 13 on 2 cores
        stop_groups([p for p in (worker, broker.process if broker else None) if p], timeout=3.0)
