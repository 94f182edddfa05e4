"""How a drain of several workers is rated: first → last, and while all of them were busy."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.bench import throughput
from stream.bench.context import BenchContext
from stream.bench.report import _all_busy_md as all_busy_md
from stream.bench.report import _rounds_md
from stream.bench.runner import QUICK, BenchOptions
from stream.bench.throughput import Drain, Sample, all_busy, ratios


def _polls(*counts: tuple[int, int]) -> list[Sample]:
    return [(0.1 * k, list(c)) for k, c in enumerate(counts)]


def test_a_worker_that_starts_late_is_rated_only_where_both_drain() -> None:
    # worker 0 drains alone for 3 polls at 100 a poll, then both at 100 each, then worker 0
    # is done and worker 1 goes on alone
    counts = [(0, 0), (100, 0), (200, 0), (300, 0)]
    counts += [(300 + 100 * k, 100 * k) for k in range(1, 9)]  # polls 4-11: both busy
    counts += [(1100, 900), (1100, 1000), (1100, 1000)]
    busy = all_busy(_polls(*counts))
    # worker 0 reaches its final count at poll 11: from poll 4 (both begun) to poll 10
    assert busy["eps"] == pytest.approx(2000.0)
    assert busy["seconds"] == pytest.approx(0.6)
    assert busy["start_skew_s"] == pytest.approx(0.3)


def test_workers_one_after_the_other_have_no_busy_window() -> None:
    counts = [(0, 0), (500, 0), (1000, 0), (1000, 0), (1000, 500), (1000, 1400)]
    busy = all_busy(_polls(*counts))
    assert busy["eps"] is None
    assert busy["start_skew_s"] == pytest.approx(0.3)
    assert "no window" in all_busy_md(_report(busy))[0]


def test_a_window_shorter_than_the_minimum_is_not_rated() -> None:
    counts = [(0, 0), (100, 100), (200, 200), (300, 300), (300, 400)]
    assert all_busy(_polls(*counts), min_polls=5)["eps"] is None
    assert all_busy(_polls(*counts), min_polls=1)["eps"] == pytest.approx(2000.0)


def test_a_worker_without_events_has_no_window_and_no_skew() -> None:
    busy = all_busy(_polls((0, 0), (100, 0), (200, 0)))
    assert busy == {"eps": None, "seconds": 0.0, "start_skew_s": None}


def test_the_busy_rate_is_also_a_ratio_to_one_worker_and_in_the_markdown() -> None:
    figures = {"pipeline_eps": 1000.0, "two_workers_eps": 900.0}
    figures |= {"two_workers_all_busy_eps": 1700.0, "naive_faust_eps": 500.0}
    r = ratios(figures)
    assert r["two_workers_all_busy_vs_pipeline"] == pytest.approx(1.7)
    assert r["two_workers_vs_pipeline"] == pytest.approx(0.9)
    busy = {"eps": 1700.0, "seconds": 1.2, "start_skew_s": 0.4}
    line = all_busy_md(_report(busy) | {"pipeline_eps": 1000.0})[0]
    assert "1,700 events/s" in line and "1.70×" in line and "0.4 s apart" in line


def test_quick_drains_a_longer_backlog_unless_events_alone_is_given() -> None:
    assert BenchOptions.build(True).drain_events == QUICK["drain_events"]
    assert BenchOptions.build(True).events == QUICK["events"]
    assert BenchOptions.build(True, events=300).drain_events is None
    assert BenchOptions.build(True, events=300, drain_events=900).drain_events == 900
    assert BenchOptions.build(False).drain_events is None


class _Fresh:
    """A stand-in for ``fresh_contexts``: records which broker each drain asked for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[BenchContext]:
        self.names.append(name)
        yield BenchContext(None, f"broker-of-{name}", 0, Path("run"))  # type: ignore[arg-type]


def _rounds_run(
    monkeypatch: pytest.MonkeyPatch, rates: dict[str, list[float]], rounds: int
) -> tuple[dict[str, Any], list[str]]:
    """``run_throughput`` with each drain's rate taken, in turn, from ``rates``."""
    left = {name: list(values) for name, values in rates.items()}
    dirs: set[str] = set()

    def drain(ctx: BenchContext, name: str, *_: object) -> Drain:
        assert ctx.bootstrap.endswith(name + ctx.tag)  # on the broker made for this drain
        dirs.add(ctx.env("tp-", name)["RECSTREAM_DATA_DIR"])
        return Drain(eps=left[name].pop(0), events=100, seconds=1.0, startup_s=0.5)

    monkeypatch.setattr(throughput, "_drain", drain)
    fresh = _Fresh()
    out = throughput.run_throughput(fresh, "tp-", 100, rounds)  # type: ignore[arg-type]
    assert all(not values for values in left.values()), left  # every planned drain ran
    assert len(dirs) == len(fresh.names)  # each drain starts from a data dir of its own
    return out, fresh.names


def test_rounds_repeat_the_pipeline_and_naive_faust_in_alternating_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rates = {name: [1000.0] for name in throughput.RUNS}
    rates["pipeline"] = [2000.0, 2600.0, 1500.0]
    rates["naive_faust"] = [1000.0, 1100.0, 1000.0]
    out, names = _rounds_run(monkeypatch, rates, 3)
    assert names[len(throughput.RUNS) :] == [
        "throughput-naive_faust-round2", "throughput-pipeline-round2",
        "throughput-pipeline-round3", "throughput-naive_faust-round3",
    ]  # fmt: skip
    assert out["pipeline_eps"] == 2000.0 and out["naive_faust_eps"] == 1000.0  # medians
    assert out["ratios"]["pipeline_vs_naive_faust"] == pytest.approx(2.0)
    assert [r["ratio"] for r in out["rounds"]] == pytest.approx([2.0, 2600 / 1100, 1.5], abs=1e-4)
    assert out["runs"]["pipeline"]["eps"] == 2000.0  # round 1's drains, as before
    md = "\n".join(_rounds_md({**out, "throughput_rounds": out["rounds"]}))
    assert "3 rounds" in md and "| 2 | 2,600 | 1,100 | 2.36× |" in md


def test_one_round_is_every_drain_once_and_adds_no_table(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = {name: [1000.0] for name in throughput.RUNS} | {"pipeline": [3000.0]}
    out, names = _rounds_run(monkeypatch, rates, 1)
    assert names == [f"throughput-{name}" for name in throughput.RUNS]
    assert out["pipeline_eps"] == 3000.0 and len(out["rounds"]) == 1
    assert _rounds_md({**out, "throughput_rounds": out["rounds"]}) == []


def test_rounds_are_at_least_one_and_quick_runs_one() -> None:
    assert BenchOptions.build(True).rounds == 1 and BenchOptions.build(False).rounds == 3
    assert BenchOptions.build(False, rounds=5).rounds == 5
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        BenchOptions.build(False, rounds=0)


def _report(busy: dict[str, object]) -> dict[str, object]:
    return {"throughput_runs": {"two_workers": {"all_busy": busy}}}
