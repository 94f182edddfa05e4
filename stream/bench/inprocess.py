"""In-worker time per user burst, stage by stage, measured in-process through the public API.

What a worker does for one user's burst, minus Kafka and Faust: decode and validate the raw
messages (``Decoder``), read the profile (in-memory ``StateStore`` + ``UserProfile.from_bytes``),
fold the events in (``Engine.apply``: the profile; shared popularity / co-occurrence once per
window, as a worker's batch does), rank every
feed (``Engine.recommend``: candidates, scoring, filters, diversity and reasons — the public
API does not split candidates from scoring), serialise the output messages (orjson) and write
the profile back (``to_bytes`` + ``set``).

Bursts are cut as ``Pipeline.handle_user_batch`` cuts them: one agent reads every user-keyed
topic, so a window of ``batch_max`` consecutive events is grouped by user only (arrival order
kept inside a user, users in order of first appearance), whatever the topics. The bench used
to split a window by topic first (once there was one agent per topic), which ranked a user
once per topic where the worker ranks once: on the quick workload it cut 1.85 events per
burst where the worker sees 3.65, and put the cost per event at ~1,100 µs where it is ~620 µs
(CPU time, medians of 4 alternating runs; the cost per burst barely moved, ranking dominates
it). The first half of the workload only warms the engine (popularity, co-occurrence,
profiles with a history); the second half is timed, under the collector a ready worker runs
(``gc_pauses.as_worker``: the warmed heap frozen, the youngest generation's threshold of
``Settings.gc_gen0_threshold``), so a burst pays the collections a worker pays, not a full
collection of the whole bench process. Each window runs as the worker runs a batch: what its
bursts teach the shared read models is applied once all are ranked (``Engine.learning_held``),
timed once and shared evenly by the window's bursts in their ``apply`` stage.

The ``rank`` stage is cold, as the worker pays it: the first ranking after a batch's writes
also brings the shared read models (co-occurrence rows, top lists) up to date. Beside it, not
part of the total, the same ranking is timed again (``rank_warm``: same inputs, models
already synced) and without reasons (``rank_without_reasons``, also warm). So cold − warm is
the refresh, warm − without reasons what the reasons cost (``rank_split_us``). Comparing cold
with without-reasons, as the bench did, charged the refresh to the reasons: of the 540-650 µs
it showed (quick workload, 4 runs) the refresh is 390-460 µs and the reasons 150-190 µs.

The engine is the one a worker runs: with ``Settings.pfeed`` on (the default) a worker ranks
through the Pfeed blend (query→target lookup + co-occurrence, ``PfeedRuntime``), so this bench
builds the same lookup for the catalog. Without it a burst cost 16-26 % less than with it
(4,000-event quick workload, back to back), and comparing that figure with the live worker's
rate wrongly put the blend's cost in Kafka/Faust.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stream.adapters.codec import DeadLetter, Decoder, Envelope
from stream.adapters.gc_pauses import as_worker
from stream.adapters.state_store import MemoryStore, StateStore
from stream.adapters.validation import get_validators
from stream.domain.engine import Engine, split_refreshes
from stream.domain.events import UserEvent
from stream.domain.kernels import warm_up_all
from stream.domain.profile import UserProfile
from stream.domain.ranking import rank_feeds
from stream.replay import KEY_FIELD
from stream.settings import Settings

STAGES = ("decode", "state_read", "apply", "rank", "serialise", "state_write")
#: a raw message as the worker sees it: (topic, key, value)
Raw = tuple[str, bytes, bytes]


def build_engine(
    catalog: Iterable[dict[str, Any]], engine: Engine | None = None, pfeed: bool = False
) -> Engine:
    """An engine holding ``catalog``; ``pfeed`` adds the worker's lookup blend (see above).
    The compiled kernels are loaded first, as a worker loads them before it serves."""
    warm_up_all()
    engine = engine or Engine()
    messages = list(catalog)
    for message in messages:
        engine.catalog.upsert(message)
    if pfeed:
        _attach_pfeed(engine, messages)
    return engine


def _attach_pfeed(engine: Engine, catalog: Sequence[dict[str, Any]]) -> None:
    """Build the catalog's lookup (bundled encoder) and blend it into the engine's relations,
    as ``PfeedRuntime.start`` does in a worker (without Qdrant: its writes are off the path)."""
    from stream.adapters.pfeed_runtime import PfeedRuntime

    with tempfile.TemporaryDirectory(prefix="recstream-bench-lookup-") as tmp:
        runtime = PfeedRuntime(Settings(data_dir=Path(tmp)), engine, items=None)
        for message in catalog:
            runtime.on_item("catalog", message)
        asyncio.run(runtime.start())


def encode(events: Iterable[dict[str, Any]]) -> list[Raw]:
    """Workload records as the bytes on their topics (key = user id)."""
    return [
        (
            e["topic"],
            str(e[KEY_FIELD[e["topic"]]]).encode(),
            orjson.dumps({k: v for k, v in e.items() if k != "topic"}),
        )
        for e in events
    ]


def burst_windows(raw: Sequence[Raw], batch_max: int) -> list[list[list[Raw]]]:
    """Windows of ``batch_max`` consecutive events (a worker's batches under a backlog), each
    cut per user (the key), topics mixed, as ``handle_user_batch`` groups a batch: arrival
    order inside a user, users in order of first appearance."""
    out: list[list[list[Raw]]] = []
    for start in range(0, len(raw), batch_max):
        groups: dict[bytes, list[Raw]] = {}
        for message in raw[start : start + batch_max]:
            groups.setdefault(message[1], []).append(message)
        out.append(list(groups.values()))
    return out


def bursts(raw: Sequence[Raw], batch_max: int) -> list[list[Raw]]:
    """``burst_windows`` flattened: every user burst in order."""
    return [burst for window in burst_windows(raw, batch_max) for burst in window]


@dataclass
class BurstRunner:
    """The worker's per-burst work on an in-memory store, timed per stage (ns)."""

    engine: Engine
    store: StateStore = field(default_factory=MemoryStore)
    decoder: Decoder = field(default_factory=lambda: Decoder(get_validators(), 64 * 1024))
    offsets: dict[str, int] = field(default_factory=dict)
    probes: int = field(default=0, init=False)  # warm re-rankings done (their order alternates)

    def run(self, burst: Sequence[Raw], reasons_probe: bool = False) -> dict[str, int]:
        t0 = time.perf_counter_ns()
        known = self.engine.catalog.index.__contains__
        events: list[UserEvent] = []
        for topic, key, value in burst:
            offset = self.offsets[topic] = self.offsets.get(topic, -1) + 1
            result = self.decoder.decode_user_event(Envelope(topic, 0, offset, key, value), known)
            if not isinstance(result, DeadLetter):
                events.append(result)
        t1 = time.perf_counter_ns()
        if not events:
            return dict.fromkeys(STAGES, 0) | {"decode": t1 - t0, "events": len(burst)}
        user_id = events[0].user_id
        raw = self.store.get(user_id)
        state = UserProfile.from_bytes(raw) if raw is not None else None
        t2 = time.perf_counter_ns()
        # as ``Engine.step`` does it, in two timed halves
        updates, refreshes = split_refreshes(events)
        profile, applied, _ = self.engine.apply(state, user_id, updates)
        t3 = time.perf_counter_ns()
        recs = self.engine.answer(profile, updates if applied else [], refreshes)
        t4 = time.perf_counter_ns()
        emitted = int(time.time() * 1000)
        outputs = [orjson.dumps(rec.to_message(emitted, emitted)) for rec in recs]
        t5 = time.perf_counter_ns()
        if applied or recs:  # (a refresh writes the list it remembers)
            self.store.set(user_id, profile.to_bytes())
        t6 = time.perf_counter_ns()
        timing = {
            "decode": t1 - t0,
            "state_read": t2 - t1,
            "apply": t3 - t2,
            "rank": t4 - t3,
            "serialise": t5 - t4,
            "state_write": t6 - t5,
            "events": len(burst),
            "output_bytes": sum(len(o) for o in outputs),
        }
        if reasons_probe and recs:
            now = max(profile.last_ts, *(e.ts for e in events))  # what ``answer`` ranked at
            timing |= self.rank_again(profile, now)
        return timing

    def run_window(
        self, window: Sequence[Sequence[Raw]], reasons_probe: bool = False
    ) -> list[dict[str, int]]:
        """One batch's bursts as the worker runs them: learning held until all are ranked
        (``Engine.learning_held``); applying what they taught is timed once and shared evenly
        by the window's bursts, in their ``apply`` stage, where learning was timed before."""
        with self.engine.learning_held():
            timings = [self.run(burst, reasons_probe) for burst in window]
            started = time.perf_counter_ns()
            self.engine.release_learning()  # (the block's end then has nothing left to apply)
            share = (time.perf_counter_ns() - started) // max(1, len(timings))
        for timing in timings:
            timing["apply"] += share
        return timings

    def rank_again(self, profile: UserProfile, now: float) -> dict[str, int]:
        """The burst's ranking again, warm (right after the cold one: shared read models
        synced), with and without reasons; same inputs as ``Engine.recommend`` (learned rates,
        trending), so the two differ by the reasons alone. Their order alternates burst by
        burst: the first ranking after the cold one still costs more than the next (three warm
        ones in a row: 1,235, 1,156, 1,135 µs mean on the quick workload, with the same Python
        calls, counted with cProfile), which a fixed order charged to one of them."""
        e = self.engine
        self.probes += 1
        order = ((True, "rank_warm"), (False, "rank_without_reasons"))
        timing = {}
        for explain, key in order if self.probes % 2 else order[::-1]:
            started = time.perf_counter_ns()
            rank_feeds(
                profile, e.catalog, e.relations, e.ranking, now, e.feeds, e.profile_config,
                explain, e.repeats, e.trending,
            )  # fmt: skip
            timing[key] = time.perf_counter_ns() - started
        return timing


def quantiles_us(values: Sequence[int]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64) / 1000.0
    if a.size == 0:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0}
    p50, p99 = np.percentile(a, [50, 99]).tolist()
    return {"p50": round(p50, 1), "p99": round(p99, 1), "mean": round(float(a.mean()), 1)}


def _split(probed: Sequence[dict[str, int]]) -> dict[str, float]:
    """Mean µs over the bursts that ranked: refresh = cold − warm, reasons = warm − warm
    without reasons (means: per burst, the alternating order would mix two distributions)."""
    if not probed:
        return {"refresh": 0.0, "reasons": 0.0}
    cold, warm, bare = (
        float(np.mean([t[k] for t in probed])) / 1000.0
        for k in ("rank", "rank_warm", "rank_without_reasons")
    )
    return {"refresh": round(cold - warm, 1), "reasons": round(warm - bare, 1)}


def measure_bursts(
    catalog: list[dict[str, Any]],
    events: list[dict[str, Any]],
    batch_max: int,
    pfeed: bool | None = None,
) -> tuple[dict[str, Any], BurstRunner]:
    """Warm on the first half, time every burst of the second half; the runner stays warm.
    ``pfeed`` None = as a worker runs by default (``Settings().pfeed``)."""
    pfeed = Settings().pfeed if pfeed is None else pfeed
    runner = BurstRunner(build_engine(catalog, pfeed=pfeed))
    windows = burst_windows(encode(events), batch_max)
    half = len(windows) // 2
    for window in windows[:half]:
        runner.run_window(window)
    settings = Settings()
    with as_worker(settings.gc_freeze, settings.gc_gen0_threshold):  # the worker's collector
        timings = [t for w in windows[half:] for t in runner.run_window(w, reasons_probe=True)]
    totals = [sum(t[s] for s in STAGES) for t in timings]
    probed = [t for t in timings if "rank_warm" in t]
    n_events = sum(t["events"] for t in timings)
    result = {
        "bursts": len(timings),
        "events": n_events,
        "events_per_burst": round(n_events / max(1, len(timings)), 2),
        "batch_max": batch_max,
        "pfeed": pfeed,
        "total_us": quantiles_us(totals),
        "per_event_us": round(sum(totals) / max(1, n_events) / 1000.0, 1),
        "stages_us": {s: quantiles_us([t[s] for t in timings]) for s in STAGES},
        "rank_without_reasons_us": quantiles_us([t["rank_without_reasons"] for t in probed]),
        "rank_warm_us": quantiles_us([t["rank_warm"] for t in probed]),
        "rank_split_us": _split(probed),
        "output_bytes_mean": round(
            float(np.mean([t.get("output_bytes", 0) for t in timings])) if timings else 0.0, 1
        ),
    }
    return result, runner


#: a steady stream's batch in ``measure_steady``: at a few hundred events/s a worker's fetch
#: brings ~1-20 events, so a user's burst is 1-3 events, not the ~13 of a drain's windows
STEADY_WINDOW = 40


def measure_steady(
    runner: BurstRunner, events: Sequence[dict[str, Any]], window: int = STEADY_WINDOW
) -> dict[str, Any]:
    """CPU an event when the batches are a steady stream's (``window`` events), on the warm
    ``runner``, under the worker's collector: what ``measure_bursts``' figure, taken in a
    drain's windows where a burst coalesces ~13 events into one ranking, does not say. A
    steady stream ranks nearly every event (in process on the quick workload, windows of 40:
    ~1.5 events a burst, 600-730 µs an event against ~170 in windows of 1,024)."""
    windows = burst_windows(encode(events), window)
    settings = Settings()
    with as_worker(settings.gc_freeze, settings.gc_gen0_threshold):
        started = time.process_time()
        for w in windows:
            runner.run_window(w)
        cpu = time.process_time() - started
    n_bursts = sum(len(w) for w in windows)
    n_events = sum(len(burst) for w in windows for burst in w)
    return {
        "window": window,
        "events": n_events,
        "bursts": n_bursts,
        "events_per_burst": round(n_events / max(1, n_bursts), 2),
        "cpu_us_per_event": round(cpu * 1e6 / max(1, n_events), 1),
        "cpu_us_per_burst": round(cpu * 1e6 / max(1, n_bursts), 1),
    }
