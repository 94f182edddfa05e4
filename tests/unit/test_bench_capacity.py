"""The steady-capacity search of ``recstream bench`` (pure: a fake worker answers the probes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream.bench import plots
from stream.bench.capacity import FIRST_PART, CapacitySearch, bounds, next_rate, search, within
from stream.bench.report import _capacity_md


def _row(rate: float, p99: float, unanswered: int = 0, events: int = 100) -> dict[str, Any]:
    return {
        "rate_eps": rate,
        "p99": p99,
        "p50": p99 / 2,
        "unanswered": unanswered,
        "events": events,
    }


def test_a_probe_is_within_only_with_every_event_answered_under_the_bound() -> None:
    assert within(_row(100, 99.0), 100.0)
    assert within(_row(100, 100.0), 100.0)
    assert not within(_row(100, 101.0), 100.0)
    assert not within(_row(100, 50.0, unanswered=1), 100.0)  # a lost answer is no capacity
    assert not within({"rate_eps": 100, "events": 0, "unanswered": 0}, 100.0)


def test_bisection_starts_below_the_levels_that_failed() -> None:
    levels = [_row(250, 160.0), _row(500, 400.0), _row(750, 800.0)]
    assert bounds(levels, 100.0, 1000.0) == (0.0, 250)
    assert next_rate(levels, 100.0, 1000.0) == 125.0
    # nothing tried yet: halfway to the drained rate
    assert next_rate([], 100.0, 1000.0) == 500.0


def test_a_noisy_success_above_a_failure_does_not_raise_the_floor() -> None:
    tried = [_row(200, 80.0), _row(300, 150.0), _row(400, 90.0)]
    assert bounds(tried, 100.0, 1000.0) == (200, 300)


def test_search_converges_on_a_worker_with_a_known_knee() -> None:
    knee = 333.0  # this fake worker keeps p99 at 50 ms up to the knee, then queues
    asked: list[tuple[float, int]] = []

    def measure(rate: float, part: int) -> dict[str, Any]:
        asked.append((rate, part))
        return _row(0, 50.0 if rate <= knee else 900.0)

    levels = [_row(500, 400.0), _row(1000, 900.0), _row(1500, 2000.0)]
    out = search(CapacitySearch(probes=5), levels, 2000.0, measure)
    # every probe on a workload part of its own; a failure is measured twice
    assert [part for _, part in asked] == list(range(FIRST_PART, FIRST_PART + len(asked)))
    rates = [r for r, _ in asked]
    assert len(set(rates)) == 5 and len(asked) == 5 + sum(r > knee for r in set(rates))
    assert asked[0][0] == 250.0  # halfway below the first failing level
    assert out["eps"] is not None and knee - 500 / 2**5 <= out["eps"] <= knee
    assert out["first_beyond_eps"] > knee
    assert out["share_of_drained"] == round(out["eps"] / 2000.0, 3)
    assert [p["rate_eps"] for p in out["probes"]] == [round(r, 1) for r in rates]
    assert [bool(p.get("confirms")) for p in out["probes"]] == [
        i > 0 and rates[i] == rates[i - 1] for i in range(len(rates))
    ]


def test_a_failure_that_its_retry_does_not_repeat_does_not_cap_the_search() -> None:
    stalls = {250.0}  # the first probe at 250/s meets a stall of the machine; its retry not
    asked: list[float] = []

    def measure(rate: float, part: int) -> dict[str, Any]:
        asked.append(rate)
        if rate in stalls:
            stalls.discard(rate)
            return _row(0, 400.0)
        return _row(0, 50.0 if rate <= 333.0 else 900.0)

    levels = [_row(500, 400.0)]
    out = search(CapacitySearch(probes=3), levels, 2000.0, measure)
    assert asked[:3] == [250.0, 250.0, 375.0]
    assert out["eps"] is not None and out["eps"] > 250.0


def test_without_confirmation_one_stall_caps_the_search() -> None:
    def measure(rate: float, part: int) -> dict[str, Any]:
        return _row(0, 400.0 if rate == 250.0 else 50.0)  # 250/s always stalls

    out = search(CapacitySearch(probes=3, confirm=False), [_row(500, 400.0)], 2000.0, measure)
    assert out["eps"] is not None and out["eps"] < 250.0


def test_no_probe_within_the_bound_reports_none() -> None:
    out = search(CapacitySearch(probes=2), [], 800.0, lambda rate, part: _row(rate, 500.0))
    assert out["eps"] is None and out["share_of_drained"] is None
    md = "\n".join(_capacity_md({"latency": {"capacity": out}}))
    assert "no probe within the bound" in md


def test_the_report_and_plot_show_the_capacity_and_its_probes(tmp_path: Path) -> None:
    probes = [{**_row(400, 60.0), "load": 0.2}, {**_row(600, 300.0), "load": 0.3}]
    probes.append({**_row(600, 250.0), "load": 0.3, "confirms": True})
    capacity = {
        "p99_bound_ms": 100.0, "eps": 400.0, "first_beyond_eps": 600.0, "drained_eps": 2000.0,
        "share_of_drained": 0.2, "probes": probes,
    }  # fmt: skip
    md = "\n".join(_capacity_md({"latency": {"capacity": capacity}}))
    assert "p99 ≤ 100 ms" in md and "**400 events/s** (20 % of the drained rate" in md
    assert "| 600 | 150.0 | 300.0 | 0 |" in md and "| 600 (again) | 125.0 | 250.0 | 0 |" in md
    assert _capacity_md({"latency": {}}) == []  # quick runs have none
    report = {"latency": {"pipeline": [{**_row(500, 200.0), "load": 0.25, "p95": 1.0}]}}
    report["latency"]["capacity"] = capacity
    for row in probes:
        row["p95"] = row["p99"]
    assert plots.latency(report, tmp_path / "latency.png").stat().st_size > 0
