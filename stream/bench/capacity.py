"""One worker's steady capacity: the fastest paced load it answers within a p99 bound.

The latency levels are shares of the *drained* rate (a pre-filled backlog, read partition by
partition, where a user's events coalesce into a few rankings). A steady stream coalesces far
less (a list for nearly every event), so a level at 50 % of the drained rate can already be past
what one worker sustains, and its p99 is then the queue's. This search answers the operator's
question instead: how many events a second may one worker take while its p99 stays under
``p99_ms``? (The capacity section of the README divides a shop's peak rate by this figure.)

It bisects on a pipeline worker of its own, on a broker of its own, after a warm-up level like
the latency levels' worker had: those levels are its first points, then each probe runs a paced
load at the midpoint between the fastest rate within the bound and the slowest beyond it (the
drained rate when none is), on a part of the workload no level uses. A probe is within the
bound when every event was answered and its p99 is at most ``p99_ms``; one probe is a few
seconds on a shared machine, so the figure is a resolution of a few percent of the drained
rate, not more.

A probe beyond the bound is run once more (``CapacitySearch.confirm``) on a fresh part of the
workload, and the rate counts as beyond only if that one is too. Why: the p99 of one 8 s probe
is its ~20th slowest answer, so a single stall of the shared machine fails a rate the worker
sustains, and the bisection then never goes above it (two full runs of the same code an hour
apart found 184 and 467 events/s). Both rows are reported (the second with ``confirms``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: the workload parts of the probes start here (the levels and warm-up use 1-4)
FIRST_PART = 10


@dataclass(frozen=True)
class CapacitySearch:
    """How many rates to probe after the latency levels (0: no search; a rate beyond the bound
    is probed twice when ``confirm``), their bound and length."""

    probes: int = 4
    p99_ms: float = 100.0
    seconds: float = 8.0
    #: a probe beyond the bound is run again, and counts as beyond only if both are
    confirm: bool = True


def within(row: dict[str, Any], p99_ms: float) -> bool:
    """Every event answered (after warm-up), and the p99 at most the bound."""
    return bool(row.get("events")) and not row.get("unanswered") and row["p99"] <= p99_ms


def bounds(tried: list[dict[str, Any]], p99_ms: float, ceiling: float) -> tuple[float, float]:
    """(fastest rate within the bound, slowest rate beyond it), from the rows tried so far.

    A rate within the bound above one beyond it (noise) does not count: the search keeps to
    rates below every failure."""
    hi = min((r["rate_eps"] for r in tried if not within(r, p99_ms)), default=ceiling)
    lo = max(
        (r["rate_eps"] for r in tried if within(r, p99_ms) and r["rate_eps"] < hi), default=0.0
    )
    return lo, hi


def next_rate(tried: list[dict[str, Any]], p99_ms: float, ceiling: float) -> float:
    lo, hi = bounds(tried, p99_ms, ceiling)
    return (lo + hi) / 2.0


def search(
    plan: CapacitySearch,
    levels: list[dict[str, Any]],
    ceiling: float,
    measure: Callable[[float, int], dict[str, Any]],
) -> dict[str, Any]:
    """Bisect with ``measure(rate, workload part) -> level row`` after the ``levels`` rows."""
    tried = [dict(r) for r in levels]
    probes: list[dict[str, Any]] = []
    part = FIRST_PART
    for _ in range(plan.probes):
        rate = next_rate(tried, plan.p99_ms, ceiling)
        row = {**measure(rate, part), "rate_eps": round(rate, 1)}
        part += 1
        probes.append(row)
        if plan.confirm and not within(row, plan.p99_ms):
            row = {**measure(rate, part), "rate_eps": round(rate, 1), "confirms": True}
            part += 1
            probes.append(row)
        tried.append(row)  # (a confirmed failure, or the retry within the bound)
    lo, hi = bounds(tried, plan.p99_ms, ceiling)
    return {
        "p99_bound_ms": plan.p99_ms,
        "eps": round(lo, 1) if lo > 0 else None,
        "first_beyond_eps": round(hi, 1),
        "drained_eps": round(ceiling, 1),
        "share_of_drained": round(lo / ceiling, 3) if lo > 0 and ceiling > 0 else None,
        "probes": probes,
    }
