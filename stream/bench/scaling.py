"""Per-event cost as the candidate set grows (10 → 2,000) and as the query set grows (1 → 100).

Both run in-process on the warm engine of ``inprocess`` (its popularity, co-occurrence and
catalog), through ``BurstRunner`` (decode → state → apply → rank → serialise → state write),
one click per call, for a *heavy* user: one whose history filled every bound of the default
``ProfileConfig`` (100 query items, full affinity tables; built by replaying workload events
re-keyed to that user). Only the ranking profile changes between points:

- candidates: ``popular_candidates = C`` with no query, affinity, repeat or relation pools
  (``query_items = 0``, ``w_relation_long = 0``: until that weight was zeroed here the long
  relation horizon still read 50 queries' rows, and the "10 candidates" point scored ~370), so
  about ``min(C, catalog size)`` items are scored, filtered, diversified and explained; each
  point also reports ``scored``, the candidate count the engine really scored for the first
  probe (the trending pool and the user's purchases can add a few);
- query set: ``query_items = long_query_items = q`` with the default profile otherwise
  (relation candidates from the q most recent query items on both relation horizons, plus the
  affinity and popular pools). Until both were set, the long horizon kept reading its default
  50 queries at every point, so the curve hardly moved with q.

Each point is the median (and p99) of ``repeats`` calls, each on a fresh copy of the profile.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stream.adapters.codec import Envelope
from stream.bench.inprocess import STAGES, BurstRunner, Raw, encode, quantiles_us
from stream.bench.state_size import profile_parts
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile, score_candidates

CANDIDATES = (10, 50, 100, 250, 500, 1000, 2000)
QUERIES = (1, 5, 10, 20, 50, 100)
HEAVY_USER = "bench-heavy"


def make_heavy_user(runner: BurstRunner, events: list[dict[str, Any]], count: int = 600) -> bytes:
    """Replay ``count`` workload events as one user's history; returns its stored profile."""
    history = [{**e, "user_id": HEAVY_USER} for e in events[:count]]
    for message in encode(history):
        runner.run([message])
    raw = runner.store.get(HEAVY_USER)
    assert raw is not None
    return raw


def _probe_clicks(events: list[dict[str, Any]], n: int) -> list[Raw]:
    clicks = [e for e in events if e["topic"] == "clicks"][:n]
    return encode([{**e, "user_id": HEAVY_USER} for e in clicks])


def _cost(runner: BurstRunner, profile: bytes, clicks: list[Raw]) -> dict[str, float]:
    totals = []
    for click in clicks:
        runner.store.set(HEAVY_USER, profile)  # same starting point every call
        timing = runner.run([click])
        totals.append(sum(timing[s] for s in STAGES))
    return quantiles_us(totals)


def _scored(runner: BurstRunner, profile: bytes, click: Raw) -> int:
    """How many candidates the engine scores for ``click`` on a copy of ``profile``."""
    engine = runner.engine
    event = runner.decoder.decode_user_event(
        Envelope(click[0], 0, 0, click[1], click[2]), engine.catalog.index.__contains__
    )
    if not isinstance(event, UserEvent):
        return 0
    state = UserProfile.from_bytes(profile)
    state = engine.apply(state, state.user_id, [event])[0]
    scored = score_candidates(
        state, engine.catalog, engine.relations, engine.ranking, float(event.ts),
        engine.profile_config, engine.repeats, engine.trending,
    )  # fmt: skip
    return 0 if scored is None else int(scored.sig.cands.size)


def _with_ranking(base: BurstRunner, ranking: RankingProfile) -> BurstRunner:
    engine: Engine = replace(base.engine, ranking=ranking)
    return BurstRunner(engine, base.store, base.decoder, base.offsets)


def measure_scaling(
    runner: BurstRunner, events: list[dict[str, Any]], repeats: int
) -> dict[str, Any]:
    """Cost curves on the warm runner; ``events`` supply the heavy history and the probes."""
    profile = make_heavy_user(runner, events)
    clicks = _probe_clicks(events[len(events) // 2 :], repeats)
    n_items = len(runner.engine.catalog)
    candidates = []
    for c in CANDIDATES:
        ranking = RankingProfile(
            popular_candidates=c,
            affinity_features=0,
            query_items=0,
            w_repeat=0.0,
            w_relation_long=0.0,
        )
        ranked = _with_ranking(runner, ranking)
        cost = _cost(ranked, profile, clicks)
        scored = _scored(ranked, profile, clicks[0]) if clicks else 0
        candidates.append({"candidates": min(c, n_items), "scored": scored, **cost})
    queries = []
    for q in QUERIES:
        ranking = RankingProfile(query_items=q, long_query_items=q)
        cost = _cost(_with_ranking(runner, ranking), profile, clicks)
        queries.append({"query_items": q, **cost})
    return {
        "repeats": len(clicks),
        "heavy_profile_bytes": len(profile),
        "heavy_profile_parts": profile_parts(profile),
        "candidates": candidates,
        "queries": queries,
    }
