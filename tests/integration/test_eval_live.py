"""`recstream eval --live` on a small real slice through a real broker and worker (issue 3)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from stream.settings import Settings
from stream.tools import dump_profiles
from tests.e2e.test_cli import run_cli
from tests.helpers import cpu_contention, read_topic_until

pytestmark = pytest.mark.integration


def _run_prefix(bootstrap: str, ours: str) -> str:
    """The topic prefix the evaluation ran under (``ours`` + ``live<time>-``), found on the
    broker, whose topics outlive the run (the test reads what the worker wrote)."""

    async def topics() -> set[str]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            return set(await consumer.topics())
        finally:
            await consumer.stop()

    found = {t.removesuffix("recommendations") for t in asyncio.run(topics())}
    runs = sorted(p for p in found if p.startswith(f"{ours}live") and p.endswith("-"))
    assert len(runs) == 1, runs
    return runs[0]


def _final_states_answered(env: dict[str, str], bootstrap: str) -> list[dict[str, Any]]:
    """The run's `for_you` lists, read back until every user the worker stored has one.

    What must hold whatever the load: each user's final state (the changelog's version) was
    answered by a list. Not "the list answers the user's last event": a worker folds a user's
    events of one poll into one list that answers the last one *it* applied, and events of two
    topics (a click, then an order) may reach it in either order (10 of 12 seen on a busy
    machine)."""
    settings = Settings.from_env(dict(env, RECSTREAM_TOPIC_PREFIX=_run_prefix(bootstrap, "evl-")))
    deadline = time.monotonic() + 30  # a changelog read ends at empty fetches: may end early
    while True:
        final = {user: int(p["v"]) for user, p in asyncio.run(dump_profiles(settings)).items()}
        if len(final) >= 12 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(final) == 12, sorted(final)

    def newest(messages: list[dict[str, Any]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in messages:
            if m["feed"] == "for_you":
                out[m["user_id"]] = max(out.get(m["user_id"], 0), m["state_version"])
        return out

    def done(messages: list[dict[str, Any]]) -> bool:
        got = newest(messages)
        return all(got.get(user, 0) >= v for user, v in final.items())

    lists = [
        m for m in read_topic_until(settings, "recommendations", done) if m["feed"] == "for_you"
    ]
    answered = newest(lists)
    short = {u: (answered.get(u, 0), v) for u, v in final.items() if answered.get(u, 0) < v}
    assert not short, f"(newest list's version, stored version): {short}"
    return lists


def test_eval_live_agrees_with_in_process(broker: Any, tmp_path: Path) -> None:
    env = dict(
        os.environ,
        RECSTREAM_KAFKA_BOOTSTRAP=broker.bootstrap,
        RECSTREAM_TOPIC_PREFIX="evl-",
        RECSTREAM_DATA_DIR=str(tmp_path),
    )
    env.pop("RECSTREAM_QDRANT_URL", None)
    out = tmp_path / "ml-live.json"
    # The comparison holds when the worker keeps pace with the replay (one list per event):
    # 60 msg/s on a machine to itself, slower in proportion to how many processes share each
    # core now (a worker that falls behind folds events and serves staler lists than the
    # in-process reference: DISAGREES 0.064 seen at 60 msg/s with the load average at 12 on
    # 2 cores). The floor keeps the run under a minute.
    contention = cpu_contention(1.0)
    rate = max(15, round(60 / contention))
    print(f"\nCPU contention {contention:.2f}: replay at {rate} msg/s")
    done = run_cli(
        "eval",
        "--dataset",
        "movielens",
        "--max-users",
        "12",
        "--live",
        "--live-rate",
        str(rate),
        "--out",
        str(out),
        env=env,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = orjson.loads(out.read_bytes())
    live = report["live"]
    print(
        f"eval --live: {live['lists_received']} lists for {report['data']['events']} events, "
        f"{live['users_last_event_answered']}/{live['users']} users' last event answered by id, "
        f"identical top-k share {live['identical_top_k_share']}"
    )
    assert live["agrees"] is True
    assert live["purchases_compared"] >= 100
    assert live["users"] == 12
    # every user's final state reached `recommendations` (read back from the run's topics)
    lists = _final_states_answered(env, broker.bootstrap)
    # ... and paced replay: many events got their own list, when the worker keeps pace. At 60
    # msg/s over 12 users a user's next event comes ~200 ms later on average; a worker whose
    # lists take longer than that (a busy machine) finds the next event already waiting and
    # folds both into one list, which is its job (0.47 of events seen with 4 suites and a CPU
    # hog sharing 2 cores, 0.69-0.86 with other jobs running, above 0.9 on a quiet machine).
    # Even on a quiet machine a run can fold far more: a pause of the paced replay (~250 ms)
    # hands the worker 16+ records at once, which it treats as a backlog and coalesces for up to
    # 250 ms (stream.adapters.faust_batches). Seen back to back, on this code and the code
    # before it alike: 0.57-0.98 here, 0.47 on a quiet clean-clone CI run. So the bound is 0.4:
    # it still fails a worker that folds most events (one list per user burst is ~0.1-0.2).
    gap_ms = 1000 * live["users"] / live["rate_msgs_per_s"]
    latency_ms = statistics.median(m["latency_ms"] for m in lists if "latency_ms" in m)
    share = live["lists_received"] / report["data"]["events"]
    print(f"median list latency {latency_ms:.0f} ms (per-user gap {gap_ms:.0f} ms), share {share}")
    if latency_ms <= gap_ms:  # kept pace: folding everything would leave one list per burst
        assert share >= 0.4, (share, latency_ms)
    # ... and many lists are exactly the in-process ones (52-66 % seen at this size; the rest
    # differ because topics are consumed by separate agents, so a user's click and order
    # produced milliseconds apart may be applied in either order)
    assert live["identical_top_k_share"] > 0.3
    assert "agrees" in done.stdout
