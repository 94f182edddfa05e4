"""Ranking profiles as configuration on a real broker and worker (issue 8): hot swap without a
restart, invalid bodies rejected and dead-lettered, a stable A/B split across restarts, and a
shadow profile scored next to the live one without changing what shoppers get."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.tools import TopicReader, produce
from tests.conftest import Deployment, WorkerProcess, new_deployment
from tests.e2e.test_cli import run_cli
from tests.integration.test_pipeline import CATALOG, ITEMS, attr, event, send_and_wait

pytestmark = pytest.mark.integration

ACME = [i for i in ITEMS if attr(i, "brand") == "acme"]
BURY_ACME = [{"feature": "brand:acme", "factor": 0}]


@pytest.fixture
def dep(broker: Any, tmp_path: Path) -> Iterator[Deployment]:
    """A deployment of its own per test, with the catalog; its workers stopped by PID after."""
    deployment = new_deployment(broker, tmp_path)
    deployment.produce([("catalog", m) for m in CATALOG])
    try:
        yield deployment
    finally:
        for w in deployment.workers:
            w.stop()


def start(dep: Deployment, name: str = "w") -> WorkerProcess:
    worker = dep.worker(name).start()
    worker.wait_ready()
    return worker


def cli(dep: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=dep.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def push_file(dep: Deployment, tmp_path: Path, body: dict[str, Any]) -> None:
    path = tmp_path / f"{body['name']}-{body['version']}.json"
    path.write_bytes(orjson.dumps(body))
    done = cli(dep, "profile", "push", str(path))
    assert done.returncode == 0, done.stderr
    assert f"{body['name']}@{body['version']}" in done.stdout


def acme_in(message: dict[str, Any]) -> list[str]:
    return [it["item_id"] for it in message["items"] if it["item_id"] in ACME]


def sample(metrics: dict[str, float], name: str, **labels: str) -> float:
    """One sample of a scrape (the exposition sorts labels by name); 0 if absent."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return metrics.get(f"{name}{{{inner}}}", 0.0)


def eventually(worker: WorkerProcess, key: str, timeout: float = 30.0) -> float | None:
    """A sample's value once present (sampled gauges lag by up to a second on a quiet machine,
    several on a starved one: the deadline is for a worker that never gets there)."""
    deadline = time.monotonic() + timeout
    while True:
        value = worker.metrics().get(key)
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def invariant_holds(worker: WorkerProcess) -> None:
    """consumed == processed + dead-lettered for every topic the worker consumed."""
    metrics = worker.metrics()
    for key, consumed in metrics.items():
        if not key.startswith("recstream_events_consumed_total{"):
            continue
        topic = key[key.index('topic="') + 7 : key.index('"', key.index('topic="') + 7)]
        processed = metrics.get(f'recstream_events_processed_total{{topic="{topic}"}}', 0.0)
        dead = sum(
            v
            for k, v in metrics.items()
            if k.startswith("recstream_dead_letters_total{") and f'topic="{topic}"' in k
        )
        assert consumed == processed + dead, (topic, consumed, processed, dead)


def test_pushed_bury_reaches_the_next_list_without_restart(dep: Deployment, tmp_path: Path) -> None:
    worker = start(dep)
    pid = worker.process.pid if worker.process else None
    shopper = "u-acme-fan"
    sent = time.monotonic()
    before = send_and_wait(dep, [event("clicks", shopper, item_id=i) for i in ACME[:3]])
    # the bound on the swap scales with how slow this machine is now: 10 s, or ten times one
    # click's round trip (reader start, produce, ranked list read back) if that is longer
    limit = max(10.0, 10 * (time.monotonic() - sent))
    assert before["profile"] == "default@1" and acme_in(before)  # acme fan: acme in the list
    push_file(dep, tmp_path, {"name": "default", "version": 2, "buries": BURY_ACME})
    pushed_at = time.time()
    swapped = None
    deadline = time.monotonic() + 30  # a follower that is stuck, not slow (the lag is asserted)
    while swapped is None and time.monotonic() < deadline:  # a click at a time until a list
        rec = send_and_wait(dep, [event("clicks", shopper, item_id=ACME[3])])  # has the label
        if rec["profile"] == "default@2":
            swapped = rec
    assert swapped is not None, "the pushed profile never became live"
    seconds = swapped["emitted_at"] / 1000.0 - pushed_at
    print(f"\npush acked -> first list ranked with default@2: {seconds * 1000:.0f} ms")
    assert seconds < limit, (seconds, limit)  # the figure is reported, the bound is for a hang
    assert acme_in(swapped) == [] and len(swapped["items"]) > 0
    assert worker.process is not None and worker.process.poll() is None
    assert worker.process.pid == pid  # same process: no restart
    info = 'recstream_ranking_profile_info{profile="default@2",variant="A"}'
    assert eventually(worker, info) == 1.0  # a sampled gauge: refreshed once a second
    assert worker.metrics().get('recstream_ranking_profile_updates_total{outcome="activated"}') == 1
    # a worker started later replays the topic and ends on the latest body; a later push
    # reaches both running workers
    late = start(dep, "late")
    assert eventually(late, info) == 1.0
    push_file(dep, tmp_path, {"name": "default", "version": 3, "buries": BURY_ACME, "size": 7})
    newest = 'recstream_ranking_profile_info{profile="default@3",variant="A"}'
    assert eventually(worker, newest) == 1.0 and eventually(late, newest) == 1.0
    lags = [w.metrics()["recstream_ranking_profile_swap_lag_seconds"] for w in (worker, late)]
    print(
        f"push of default@3 -> live in each of two workers: {[f'{x * 1000:.0f} ms' for x in lags]}"
    )
    assert all(0 < x < limit for x in lags), (lags, limit)  # the figures are reported
    # `recs --explain` re-ranks from the live state with the profile the workers run now
    done = run_cli("recs", shopper, "--explain", env=dep.env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "profile=default@3" in done.stdout
    invariant_holds(worker)
    invariant_holds(late)


def test_invalid_profile_is_rejected_dead_lettered_and_the_live_one_stays(
    dep: Deployment, tmp_path: Path
) -> None:
    worker = start(dep)
    push_file(dep, tmp_path, {"name": "default", "version": 2, "buries": BURY_ACME})
    bad_file = tmp_path / "bad.json"
    bad = {"name": "default", "version": 3, "buries": [{"feature": "brand:acme", "factor": -1}]}
    bad_file.write_bytes(orjson.dumps(bad))
    refused = cli(dep, "profile", "push", str(bad_file))
    assert refused.returncode == 1 and "factor" in refused.stderr  # checked before publishing
    # published anyway (another tool, an older CLI): every worker must reject it
    broken = {"name": "default", "version": 3, "query_items": "many"}
    dep.produce([("ranking-profiles", (b"default", orjson.dumps(broken)))], raw=True)
    letter = wait_for(dep, "dead-letters", lambda m: m["topic"] == "ranking-profiles", timeout=30)
    assert letter["reason"] == "invalid_profile" and "'query_items' must be" in letter["error"]
    rec = send_and_wait(dep, [event("clicks", "u-after-bad", item_id=ACME[0])])
    assert rec["profile"] == "default@2" and acme_in(rec) == []
    metrics = worker.metrics()
    assert metrics.get('recstream_ranking_profile_updates_total{outcome="rejected"}', 0) >= 1
    assert "keeping default@2" in worker.log()
    invariant_holds(worker)


def test_two_variants_split_users_evenly_and_keep_them_after_a_restart(
    dep: Deployment, tmp_path: Path
) -> None:
    worker = start(dep)
    variants = [
        {"name": "A", "share": 0.5},
        {"name": "B", "share": 0.5, "buries": BURY_ACME},
    ]
    push_file(dep, tmp_path, {"name": "default", "version": 2, "variants": variants})
    users = [f"ab-{i}" for i in range(1000)]
    first = lists_for(dep, users, ACME[0])
    split = Counter(m["variant"] for m in first.values())
    print(f"\nA/B split of 1,000 users: {dict(split)}")
    assert 450 <= split["B"] <= 550 and split["A"] + split["B"] == 1000
    assert all(m["profile"] == "default@2" for m in first.values())
    assert all(not acme_in(m) for m in first.values() if m["variant"] == "B")
    assert any(acme_in(m) for m in first.values() if m["variant"] == "A")
    assert worker.stop() == 0
    again = start(dep)
    second = lists_for(dep, users, ACME[1])
    assert {u: m["variant"] for u, m in second.items()} == {
        u: m["variant"] for u, m in first.items()
    }
    metrics = again.metrics()
    assert metrics.get('recstream_ranking_variant_share{profile="default@2",variant="B"}') == 0.5
    emitted = {
        v: sample(metrics, "recstream_lists_emitted_total", feed="for_you", profile="default@2",
                  variant=v)
        for v in ("A", "B")
    }  # fmt: skip
    assert emitted == {v: float(n) for v, n in split.items()}  # this worker's lists, by variant
    invariant_holds(again)


def test_shadow_profile_is_scored_and_compared_without_changing_shoppers_lists(
    dep: Deployment, tmp_path: Path
) -> None:
    worker = start(dep)
    shopper = "u-shadowed"
    send_and_wait(dep, [event("clicks", shopper, item_id=i) for i in ACME[:3]])
    push_file(dep, tmp_path, {"name": "cand", "version": 1, "shadow": True, "buries": BURY_ACME})
    # the follower reads the push within one fetch wait (20 ms) on a quiet machine; wait for the
    # gauge it sets on the swap, not a fixed pause (0.5 s was too short on a loaded one)
    shadowing = 'recstream_ranking_shadow_info{active="default@1",shadow="cand@1"}'
    assert eventually(worker, shadowing) == 1.0, "the shadow never went live"
    live = send_and_wait(dep, [event("clicks", shopper, item_id=ACME[3])])
    assert live["profile"] == "default@1" and acme_in(live)  # shoppers keep the live ranking
    shadow = wait_for(
        dep,
        "recommendations-shadow",
        lambda m: m["trigger"]["event_id"] == live["trigger"]["event_id"],
    )
    assert shadow["profile"] == "cand@1" and shadow["user_id"] == shopper
    assert acme_in(shadow) == []  # what the shadow would have shown instead
    # the shopper's next interaction: an item of the live list
    send_and_wait(dep, [event("clicks", shopper, item_id=live["items"][0]["item_id"])])
    metrics = worker.metrics()
    pair = {"active": "default@1", "shadow": "cand@1"}
    assert sample(metrics, "recstream_shadow_lists_total", **pair, feed="for_you") >= 2
    assert sample(metrics, "recstream_shadow_overlap_at_10_count", **pair, feed="for_you") >= 2
    assert sample(metrics, "recstream_shadow_rank_correlation_count", **pair, feed="for_you") >= 2
    assert sample(metrics, "recstream_shadow_next_events_total", **pair) >= 1
    assert sample(metrics, "recstream_shadow_next_event_hits_total", **pair, ranking="active") >= 1
    report = cli(
        dep, "profile", "compare", "--metrics", f"http://127.0.0.1:{worker.metrics_port}/metrics"
    )
    assert report.returncode == 0, report.stderr
    assert "live default@1  vs  shadow cand@1" in report.stdout and "overlap@10" in report.stdout
    listed = cli(dep, "profile", "list")
    assert listed.returncode == 0 and "cand@1 shadow" in listed.stdout, listed.stdout
    print("\n" + report.stdout)
    invariant_holds(worker)


def wait_for(
    dep: Deployment, topic: str, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with TopicReader(dep.settings, topic) as reader:
            return await reader.wait_for(match, timeout)

    return asyncio.run(run())


def lists_for(dep: Deployment, users: list[str], item: str) -> dict[str, dict[str, Any]]:
    """One click per user; the list answering each click, by user."""
    clicks = [event("clicks", u, item_id=item) for u in users]
    wanted = {m["event_id"]: m["user_id"] for _, m in clicks}

    async def run() -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        async with TopicReader(dep.settings, "recommendations") as reader:
            await reader.poll(10)
            await produce(dep.settings, clicks)
            deadline = time.monotonic() + 60
            while len(found) < len(users) and time.monotonic() < deadline:
                for m in await reader.poll(100):
                    user = wanted.get(m["trigger"]["event_id"])
                    if user is not None:
                        found[user] = m
        assert len(found) == len(users), f"{len(found)} of {len(users)} lists"
        return found

    return asyncio.run(run())
