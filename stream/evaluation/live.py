"""`recstream eval --live`: the same scoring, but on lists the real pipeline emitted.

Replays the dataset into a broker (paced, so each event is ranked on its own), lets a real
worker process produce `recommendations`, reads them back, and scores, for each purchase, the
last list the user received before it. The in-process reference replays the same events
through the same engine and takes the list computed right after the user's previous event —
exactly what a worker emits — so the two should agree. They can differ because (a) a worker
coalesces a user's events arriving within a few ms into one ranking, (b) popularity and
co-occurrence are updated in per-batch rather than strict event order, and (c) a list that has
not arrived before the next event is produced counts as missing. The agreement tolerance is
an absolute 0.02 on Recall@k and NDCG@k (documented in the report).
"""

from __future__ import annotations

import asyncio
import bisect
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from stream.domain.engine import Engine
from stream.domain.events import event_from_message
from stream.domain.item_feed import ItemFeed
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.evaluation.metrics import MetricAccumulator, segment_for
from stream.evaluation.pfeed import SharedLookup
from stream.evaluation.prequential import EvalConfig
from stream.settings import USER_TOPICS, Settings

TOLERANCE = 0.02


def emitted_lists_in_process(
    catalog: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
    ranking: RankingProfile,
    cfg: EvalConfig,
) -> dict[str, list[str]]:
    """event_id -> the list a worker emits right after applying that event (no coalescing):
    ``Engine.step``, exactly what the worker calls."""
    engine = Engine(ranking=ranking, profile_config=cfg.profile_config)
    lookup = SharedLookup(progress=False) if cfg.pfeed else None  # as the worker's Pfeed runtime
    if lookup is not None:
        lookup.attach(engine)
    items = ItemFeed(engine.catalog)  # the worker's item rules (held and stale stock)
    for message in catalog:
        items.apply("catalog", message)
        if lookup is not None:
            lookup.observe_catalog(message, engine)
    profiles: dict[str, UserProfile] = {}
    out: dict[str, list[str]] = {}
    for message in events:
        topic = message["topic"]
        if topic == "catalog":
            items.apply("catalog", message)
            if lookup is not None:
                lookup.observe_catalog(message, engine)
            continue
        if topic == "stock":
            items.apply("stock", message)  # the worker's rules (latest ts wins)
            continue
        if topic not in USER_TOPICS:
            continue
        if lookup is not None:
            lookup.ready()
        event = event_from_message(topic, message)
        if any(i not in engine.catalog.index for i in event.item_ids):
            continue  # dead-lettered by a worker
        result = engine.step(profiles.get(event.user_id), event.user_id, [event])
        profiles[event.user_id] = result.state
        for rec in result.recommendations:
            if rec.feed == "for_you":
                out[event.event_id] = [r.item_id for r in rec.items]
    return out


def score_lists(
    events: Sequence[dict[str, Any]],
    lists: dict[str, list[str]],
    cfg: EvalConfig,
    method: str,
    acc: MetricAccumulator,
    only: set[int] | None = None,
) -> set[int]:
    """Score each purchase after warm-up against the list answering the user's previous event.

    Returns the indexes of the purchases that had such a list (the comparable set).
    """
    warm_index = int(len(events) * cfg.warmup)
    positions: dict[str, list[tuple[int, str]]] = {}
    prior: dict[str, int] = {}
    scored: set[int] = set()
    for index, message in enumerate(events):
        user = message.get("user_id")
        if user is None:
            continue
        if message["topic"] == "orders" and index >= warm_index and (only is None or index in only):
            history = positions.get(user, [])
            cut = bisect.bisect_left(history, (index, ""))
            shown = next((lists[eid] for _, eid in reversed(history[:cut]) if eid in lists), None)
            if shown is not None:
                targets = {str(line["item_id"]) for line in message["items"]}
                acc.add(method, segment_for(prior.get(user, 0)), shown[: cfg.k], targets)
                scored.add(index)
        positions.setdefault(user, []).append((index, str(message["event_id"])))
        prior[user] = prior.get(user, 0) + 1
    return scored


async def _collect(
    settings: Settings,
    catalog: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
    rate: float,
) -> dict[str, list[str]]:
    from stream.tools import TopicReader, replay_to

    wanted = {str(m["event_id"]) for m in events if m["topic"] in USER_TOPICS}
    lists: dict[str, list[str]] = {}
    async with TopicReader(settings, "recommendations") as reader:
        task = asyncio.create_task(
            replay_to(settings, [dict(m) for m in events], partial=True, rate=rate, progress=True)
        )
        idle_since = time.monotonic()
        while True:
            new = await reader.poll(200)
            reader.messages.clear()
            for message in new:
                if message["feed"] == "for_you":
                    lists[message["trigger"]["event_id"]] = [i["item_id"] for i in message["items"]]
            if new:
                idle_since = time.monotonic()
            if task.done() and task.result().interrupted:
                # the replay swallows a Ctrl-C / SIGTERM that lands in its own step (it reports
                # partial counts): without this the command went on waiting for lists after it
                raise KeyboardInterrupt("replay interrupted")
            if task.done() and (wanted <= lists.keys() or time.monotonic() - idle_since > 10):
                break
        await task
    return lists


def evaluate_live(
    settings: Settings,
    catalog: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
    cfg: EvalConfig,
    report: dict[str, Any],
    rate: float = 60.0,
) -> dict[str, Any]:
    """Run broker (unless configured) + one worker, replay, score; compare with in-process."""
    from stream.bounded_run import run_bounded
    from stream.broker import LocalBroker, start_broker, stop_groups
    from stream.local_worker import spawn_worker, wait_ready
    from stream.tools import produce
    from stream.worker import prepare

    broker = None
    workdir = Path(tempfile.mkdtemp(prefix="recstream-live-"))
    worker = None
    # the worker runs the profile the in-process evaluation ended with (fitted or given)
    ranking = RankingProfile.from_dict(report["learned"]["profile"])
    profile_path = workdir / "ranking-profile.json"
    profile_path.write_bytes(orjson.dumps(ranking.to_dict()))
    try:
        if not settings.kafka_bootstrap_explicit:
            broker = start_broker(log_path=workdir / "broker.log")
            settings = settings.with_(kafka_bootstrap=broker.bootstrap)
        settings = settings.with_(topic_prefix=f"{settings.topic_prefix}live{int(time.time())}-")
        asyncio.run(prepare(settings))
        asyncio.run(
            produce(
                settings,
                [("catalog", {k: v for k, v in m.items() if k != "topic"}) for m in catalog],
            )
        )
        env = dict(
            os.environ,
            RECSTREAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
            RECSTREAM_TOPIC_PREFIX=settings.topic_prefix,
            RECSTREAM_DATA_DIR=str(workdir / "worker"),
            RECSTREAM_RANKING_PROFILE=str(profile_path),
            RECSTREAM_PFEED="1" if cfg.pfeed else "0",
        )
        env.pop("RECSTREAM_QDRANT_URL", None)
        log_path = workdir / "worker.log"
        worker = spawn_worker(env, log_path)
        wait_ready(worker, log_path)
        started = time.monotonic()
        live_lists = run_bounded(_collect(settings, catalog, events, rate), grace_s=2.0)
        elapsed = time.monotonic() - started
    finally:
        # worker state and broker are scratch: both signalled at once, a short shared grace,
        # then SIGKILL, so an interrupted eval stops within seconds even on a loaded machine
        stop_groups(
            [p.process if isinstance(p, LocalBroker) else p for p in (worker, broker) if p],
            timeout=3.0,
        )
        shutil.rmtree(workdir, ignore_errors=True)
    reference = emitted_lists_in_process(catalog, events, ranking, cfg)
    acc = MetricAccumulator(k=cfg.k)
    comparable = score_lists(events, live_lists, cfg, "live_pipeline", acc)
    score_lists(events, reference, cfg, "in_process_emitted", acc, only=comparable)
    popularity: dict[str, float] = {}
    summary = acc.summary(catalog_size=max(1, len(catalog)), popularity=popularity)
    k = cfg.k
    live_all = summary.get("live_pipeline", {}).get("all", {})
    ref_all = summary.get("in_process_emitted", {}).get("all", {})
    diffs = {
        m: abs(live_all.get(m, 0.0) - ref_all.get(m, 0.0)) for m in (f"recall@{k}", f"ndcg@{k}")
    }
    same = sum(1 for eid, items in live_lists.items() if reference.get(eid, [])[:k] == items[:k])
    agrees = bool(comparable) and all(d <= TOLERANCE for d in diffs.values())
    last = _last_event_per_user(events)
    return {
        "rate_msgs_per_s": rate,
        "elapsed_s": round(elapsed, 1),
        "lists_received": len(live_lists),
        "purchases_compared": len(comparable),
        # diagnostic only: a worker folds a user's events of one poll into one list, and a click
        # and an order on two topics may reach it in either order, so not every last event
        # is answered by its own id
        "users": len(last),
        "users_last_event_answered": sum(1 for eid in last.values() if eid in live_lists),
        "identical_top_k_share": round(same / max(1, len(live_lists)), 4),
        "live": live_all,
        "in_process": ref_all,
        "abs_diff": diffs,
        "tolerance": TOLERANCE,
        "agrees": agrees,
        "verdict": ("agrees" if agrees else "DISAGREES")
        + f" within ±{TOLERANCE} (recall diff {diffs[f'recall@{k}']:.4f}, "
        f"ndcg diff {diffs[f'ndcg@{k}']:.4f}, {len(comparable)} purchases)",
    }


def _last_event_per_user(events: Sequence[dict[str, Any]]) -> dict[str, str]:
    """user -> event_id of their last event on a user topic (the one a list must answer)."""
    return {str(m["user_id"]): str(m["event_id"]) for m in events if m["topic"] in USER_TOPICS}
