"""The bench harness's own logic, without a broker: workload, burst cutting, latency matching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.bench.answers import WARMUP_S, answered_latencies, summarize
from stream.bench.faust_relay import answer as faust_relay_answer
from stream.bench.inprocess import (
    BurstRunner,
    Raw,
    build_engine,
    burst_windows,
    bursts,
    encode,
    measure_bursts,
    measure_steady,
)
from stream.bench.latency import cpu_view
from stream.bench.report import _latency_md as latency_md
from stream.bench.report import headline_latency
from stream.bench.throughput import ratios
from stream.bench.workload import WorkloadConfig, generate_events, topic_mix
from stream.domain.profile import UserProfile

CATALOG = [
    {"item_id": f"i{n}", "ts": 0, "attributes": {"category": [f"dep{n % 3}", f"cat{n % 7}"]}}
    for n in range(200)
]


def test_workload_is_seeded_mixed_and_time_ordered() -> None:
    cfg = WorkloadConfig(items=200, users=50, seed=3)
    events = list(generate_events(CATALOG, cfg, 3000))
    assert events == list(generate_events(CATALOG, cfg, 3000))
    assert events != list(generate_events(CATALOG, cfg, 3000, part=1))
    assert len(events) == 3000
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    mix = topic_mix(events)
    assert {"clicks", "dwell", "carts:add", "orders"} <= set(mix)
    assert mix["clicks"] > mix["dwell"] > mix["orders"]
    known = {m["item_id"] for m in CATALOG}
    for e in events:
        ids = [line["item_id"] for line in e["items"]] if e["topic"] == "orders" else [e["item_id"]]
        assert set(ids) <= known
    # Zipf: the most clicked item is clicked far more often than the median one
    counts: dict[str, int] = {}
    for e in events:
        if e["topic"] == "clicks":
            counts[e["item_id"]] = counts.get(e["item_id"], 0) + 1
    ranked = sorted(counts.values(), reverse=True)
    assert ranked[0] >= 10 * ranked[len(ranked) // 2]


def _event(topic: str, n: int, user: str, item: str = "i1") -> dict[str, Any]:
    event = {"topic": topic, "event_id": f"e{n}", "user_id": user, "item_id": item, "ts": n}
    return event | ({"dwell_ms": 5000} if topic == "dwell" else {})


def _ids(burst: list[Raw]) -> list[str]:
    return [orjson.loads(value)["event_id"] for _, _, value in burst]


def test_bursts_group_a_window_by_user_across_topics_as_the_pipeline_does() -> None:
    raw = encode(
        [
            _event("clicks", 1, "a"),
            _event("dwell", 2, "a"),
            _event("clicks", 3, "b"),
            _event("carts", 4, "a") | {"action": "add", "quantity": 1},
            _event("clicks", 5, "a"),  # next window: a user's burst never spans two windows
            _event("dwell", 6, "b"),
        ]
    )
    cut = bursts(raw, batch_max=4)
    # one burst per user and window, topics mixed, arrival order kept, users by first appearance
    assert [_ids(b) for b in cut] == [["e1", "e2", "e4"], ["e3"], ["e5"], ["e6"]]
    assert [m[0] for m in cut[0]] == ["clicks", "dwell", "carts"]


def test_a_window_runs_as_a_batch_learning_applied_once_after_its_bursts() -> None:
    raw = encode([_event("clicks", i, u, f"i{i}") for i, u in enumerate("abab", start=1)])
    (window,) = burst_windows(raw, batch_max=4)
    runner = BurstRunner(build_engine(CATALOG))
    learner = runner.engine.learner
    seen: list[int] = []
    real_run = runner.run

    def run(burst: list[Raw], reasons_probe: bool = False) -> dict[str, int]:
        seen.append(learner.applied)  # nothing learned yet while the window's bursts run
        return real_run(burst, reasons_probe)

    runner.run = run  # type: ignore[method-assign]
    timings = runner.run_window(window)
    assert seen == [0, 0] and learner.applied == 4  # then all four, once the window is ranked
    assert len(timings) == 2 and all(t["apply"] > 0 for t in timings)
    assert runner.engine._held is None


def test_a_burst_over_several_topics_is_applied_and_ranked_once() -> None:
    runner = BurstRunner(build_engine(CATALOG))
    burst = encode(
        [_event("clicks", 1, "a", "i1"), _event("dwell", 2, "a", "i1"), _event("clicks", 3, "a")]
    )
    timing = runner.run(burst, reasons_probe=True)
    assert timing["events"] == 3 and timing["output_bytes"] > 0
    assert runner.offsets == {"clicks": 1, "dwell": 0}  # offsets count per topic
    stored = runner.store.get("a")
    assert stored is not None and UserProfile.from_bytes(stored).version == 1  # one apply
    assert {"rank", "rank_warm", "rank_without_reasons"} <= set(timing)


def test_a_refresh_alone_re_ranks_a_stored_profile_as_engine_step_does() -> None:
    runner = BurstRunner(build_engine(CATALOG))
    runner.run(encode([_event("clicks", 1, "a", "i1")]))
    stored = runner.store.get("a")
    assert stored is not None
    refresh = {"event_id": "r9", "user_id": "a", "item_id": "i1", "ts": 9}
    timing = runner.run([("refresh", b"a", orjson.dumps(refresh))], reasons_probe=True)
    assert timing["output_bytes"] > 0 and timing["rank_warm"] > 0  # answered and ranked
    after = runner.store.get("a")
    assert after is not None  # nothing applied (a refresh is no interest signal)
    assert UserProfile.from_bytes(after).version == UserProfile.from_bytes(stored).version


def test_the_warm_rankings_alternate_their_order_burst_by_burst() -> None:
    runner = BurstRunner(build_engine(CATALOG))
    runner.run(encode([_event("clicks", 1, "a", "i1"), _event("clicks", 2, "a", "i2")]))
    stored = runner.store.get("a")
    assert stored is not None
    profile = UserProfile.from_bytes(stored)
    orders = [list(runner.rank_again(profile, 3.0)) for _ in range(3)]
    warm_first = ["rank_warm", "rank_without_reasons"]
    assert orders == [warm_first, warm_first[::-1], warm_first]


def test_measure_bursts_reports_cold_warm_and_the_split() -> None:
    events = list(generate_events(CATALOG, WorkloadConfig(items=200, users=20, seed=5), 400))
    result, _ = measure_bursts(CATALOG, events, batch_max=64, pfeed=False)
    assert result["events_per_burst"] > 1  # a window holds several events of a user
    for key in ("rank_without_reasons_us", "rank_warm_us"):
        assert result[key]["mean"] > 0
    assert set(result["rank_split_us"]) == {"refresh", "reasons"}
    assert result["per_event_us"] > 0 and set(result["stages_us"]["rank"]) == {"p50", "p99", "mean"}


def test_a_steady_streams_windows_rank_nearly_every_event() -> None:
    cfg = WorkloadConfig(items=200, users=20, seed=5)
    drain, runner = measure_bursts(CATALOG, list(generate_events(CATALOG, cfg, 400)), 64, False)
    fresh = list(generate_events(CATALOG, cfg, 120, part=2))
    steady = measure_steady(runner, fresh, window=8)
    assert steady["events"] == 120 and steady["window"] == 8
    assert 1 <= steady["events_per_burst"] < drain["events_per_burst"]
    assert steady["cpu_us_per_event"] > 0 and steady["cpu_us_per_burst"] > 0
    one = measure_steady(runner, fresh[:20], window=1)
    assert one["bursts"] == one["events"] == 20 and one["events_per_burst"] == 1


def _write(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    path.write_text("".join(f"{e}\t{u}\t{t:.6f}\n" for e, u, t in rows))
    return path


def test_a_coalesced_event_is_answered_by_the_next_list_of_its_user(tmp_path: Path) -> None:
    t0 = 1000.0
    late = t0 + WARMUP_S + 1.0
    sent = _write(
        tmp_path / "sent.tsv",
        [
            ("warm", "w", t0),  # inside the warm-up: not counted
            ("a1", "a", late),
            ("a2", "a", late + 0.010),  # coalesced with a1: the list answers a2
            ("b1", "b", late + 0.020),
            ("c1", "c", late + 0.030),  # never answered
        ],
    )
    received = {"warm": t0 + 0.001, "a2": late + 0.050, "b1": late + 0.025}
    latencies, unanswered = answered_latencies(sent, received)
    assert sorted(latencies.round(3).tolist()) == [5.0, 40.0, 50.0]
    assert unanswered == 1
    stats = summarize(latencies, unanswered)
    assert stats["max"] == 50.0 and stats["events"] == 3 and stats["unanswered"] == 1


def test_an_answer_to_an_earlier_event_does_not_count_for_a_later_one(tmp_path: Path) -> None:
    t = 2000.0 + WARMUP_S
    sent = _write(tmp_path / "sent.tsv", [("x", "a", 2000.0), ("a1", "a", t), ("a2", "a", t + 1)])
    latencies, unanswered = answered_latencies(sent, {"a1": t + 0.002})
    assert latencies.round(3).tolist() == [2.0]
    assert unanswered == 1  # a2 came after the only list


def _write_timed(path: Path, rows: list[tuple[str, str, float, int]]) -> Path:
    path.write_text("".join(f"{e}\t{u}\t{t:.6f}\t{ts}\n" for e, u, t, ts in rows))
    return path


def test_events_of_one_instant_share_the_list_that_names_either(tmp_path: Path) -> None:
    # the worker names the last of equal event times in its fetch order: here the one sent first
    t = 3000.0 + WARMUP_S
    sent = _write_timed(
        tmp_path / "sent.tsv",
        [("x", "a", 3000.0, 1), ("c", "a", t, 50), ("k", "a", t + 0.001, 50)],
    )
    latencies, unanswered = answered_latencies(sent, {"c": t + 0.010})
    assert sorted(latencies.round(3).tolist()) == [9.0, 10.0]
    assert unanswered == 0


def test_matching_follows_event_time_and_ignores_answers_before_the_send(tmp_path: Path) -> None:
    t = 4000.0 + WARMUP_S
    sent = _write_timed(
        tmp_path / "sent.tsv",
        [("x", "a", 4000.0, 1), ("a1", "a", t, 70), ("a2", "a", t + 1, 70), ("a3", "a", t + 2, 60)],
    )
    # a1's list arrived before a2 was sent; a3 happened before both and is answered by a1's
    latencies, unanswered = answered_latencies(sent, {"a1": t + 0.5})
    assert latencies.round(3).tolist() == [500.0]  # a1; a3 was sent after that list arrived
    assert unanswered == 2  # a2 (its instant's only answer came before it), a3


def test_a_log_without_event_times_falls_back_to_send_order(tmp_path: Path) -> None:
    t = 5000.0 + WARMUP_S
    sent = _write(tmp_path / "sent.tsv", [("x", "a", 5000.0), ("a1", "a", t), ("a2", "a", t + 1)])
    latencies, unanswered = answered_latencies(sent, {"a2": t + 1.5})
    assert sorted(latencies.round(3).tolist()) == [500.0, 1500.0]
    assert unanswered == 0


def test_ratios_compare_each_figure_with_each_baseline() -> None:
    figures = {
        "pipeline_eps": 500.0,
        "two_workers_eps": 900.0,
        "naive_faust_eps": 250.0,
        "noop_faust_eps": 5000.0,
        "bare_consumer_eps": 100000.0,
    }
    r = ratios(figures)
    assert r["pipeline_vs_naive_faust"] == pytest.approx(2.0)
    assert r["two_workers_vs_pipeline"] == pytest.approx(1.8)
    assert r["pipeline_vs_bare_consumer"] == pytest.approx(0.005)
    assert len(r) == 7


def test_total_lag_sums_the_group_partitions_and_knows_when_it_does_not_know() -> None:
    from stream.bench.latency import total_lag

    name = "recstream_consumer_lag_messages"
    sample = {
        f'{name}{{consumer="group",partition="0",topic="lat-catalog"}}': 120.0,
        f'{name}{{consumer="group",partition="1",topic="lat-clicks"}}': 3.0,
        f'{name}{{consumer="replica",partition="0",topic="lat-catalog"}}': 50.0,  # not the group
        "recstream_batch_events_count": 9.0,
    }
    assert total_lag(sample) == 123.0
    assert total_lag({k: 0.0 for k in sample}) == 0.0
    assert total_lag({"recstream_batch_events_count": 9.0}) is None  # not sampled yet
    assert total_lag(None) is None  # worker not answering


def test_burst_table_shows_cold_warm_and_split_and_reads_older_reports() -> None:
    from stream.bench.report import _burst_md

    q = {"p50": 1.0, "p99": 2.0, "mean": 1.5}
    old = {
        "bursts": 2, "events": 5, "events_per_burst": 2.5, "batch_max": 256, "total_us": q,
        "per_event_us": 1.0, "stages_us": {"decode": q, "rank": q}, "rank_without_reasons_us": q,
    }  # fmt: skip
    new = old | {"rank_warm_us": q, "rank_split_us": {"refresh": 400.0, "reasons": 160.0}}
    md = "\n".join(_burst_md({"burst": new}))
    assert "| rank (cold) |" in md and "| (rank again, warm) | 1.0 |" in md
    assert "**400.0 µs**" in md and "**160.0 µs**" in md
    md_old = "\n".join(_burst_md({"burst": old}))
    assert "| (rank again, warm) | - |" in md_old and "Refresh" not in md_old


def test_worker_view_reads_plain_and_labelled_histograms_over_a_level() -> None:
    from stream.bench.latency import _worker_view

    before = {
        "recstream_event_to_recommendation_seconds_count": 10.0,
        "recstream_event_to_recommendation_seconds_sum": 1.0,
        'recstream_stage_seconds_count{stage="delivery"}': 10.0,
        'recstream_stage_seconds_sum{stage="delivery"}': 0.5,
        'recstream_stage_seconds_sum{stage="engine"}': 9.0,
    }
    after = {
        "recstream_event_to_recommendation_seconds_count": 30.0,
        "recstream_event_to_recommendation_seconds_sum": 3.0,
        'recstream_stage_seconds_count{stage="delivery"}': 30.0,
        'recstream_stage_seconds_sum{stage="delivery"}': 1.3,
        'recstream_stage_seconds_sum{stage="engine"}': 99.0,
        "recstream_batch_events_count": 5.0,
        "recstream_batch_events_sum": 20.0,
    }
    view = _worker_view(before, after)
    assert view == {"worker_mean_ms": 100.0, "worker_delivery_ms": 40.0, "worker_mean_batch": 4.0}


def test_qdrant_share_is_both_parts_of_the_serving_copy_over_the_worker_cpu() -> None:
    from stream.bench.latency import qdrant_share

    before = {
        'recstream_qdrant_cpu_seconds_total{part="build"}': 1.0,
        'recstream_qdrant_cpu_seconds_total{part="write"}': 2.0,
        'recstream_qdrant_cpu_seconds_created{part="write"}': 1e9,
    }
    after = {
        'recstream_qdrant_cpu_seconds_total{part="build"}': 1.2,
        'recstream_qdrant_cpu_seconds_total{part="write"}': 2.6,
        'recstream_qdrant_cpu_seconds_created{part="write"}': 1e9,
        "recstream_step_seconds_sum": 50.0,
    }
    assert qdrant_share(before, after, worker_cpu_s=10.0) == {"qdrant_cpu_share": 0.08}
    # a part first seen during the level counts from zero
    del before['recstream_qdrant_cpu_seconds_total{part="build"}']
    assert qdrant_share(before, after, worker_cpu_s=10.0) == {"qdrant_cpu_share": 0.18}
    assert qdrant_share(None, after, 10.0) == {} and qdrant_share(before, after, 0.0) == {}


def test_a_level_cpu_is_per_event_for_the_system_and_in_cores_for_the_broker() -> None:
    before = {"sut": 10.0, "broker": 5.0}
    after = {"sut": 12.5, "broker": 8.0}
    view = cpu_view(before, after, seconds=10.0, events=1000)
    assert view == {"sut_cpu_ms_per_event": 2.5, "broker_cores": 0.3}
    # with the machine's counters: its busy share of all cores over the level
    before |= {"machine_busy": 100.0, "machine_total": 400.0}
    after |= {"machine_busy": 115.0, "machine_total": 420.0}
    view = cpu_view(before, after, seconds=10.0, events=1000)
    assert view["machine_busy"] == 0.75 and "machine_stolen" not in view
    # and with the host's steal: its share of all cores' time over the level
    before |= {"machine_steal": 20.0}
    after |= {"machine_steal": 26.0}
    assert cpu_view(before, after, seconds=10.0, events=1000)["machine_stolen"] == 0.3
    assert cpu_view(before, after, seconds=0.0, events=1000) == {}
    assert cpu_view(before, after, seconds=10.0, events=0) == {}


def test_machine_cpu_reads_busy_and_total_seconds_that_only_grow() -> None:
    from stream.bench.procstat import machine_cpu

    busy, total = machine_cpu()
    assert 0.0 < busy <= total
    sum(i * i for i in range(200_000))  # some CPU
    busy2, total2 = machine_cpu()
    assert busy2 >= busy and total2 >= total


def test_the_hosts_steal_is_a_share_of_all_cores_time_that_never_shrinks() -> None:
    from stream.bench.procstat import machine_cpu, machine_steal, stolen_share

    first = (machine_steal(), machine_cpu()[1])
    sum(i * i for i in range(200_000))
    second = (machine_steal(), machine_cpu()[1])
    assert 0.0 <= first[0] <= second[0] <= second[1]
    share = stolen_share(first, second)
    assert share is None or 0.0 <= share <= 1.0
    assert stolen_share((5.0, 100.0), (8.0, 110.0)) == 0.3
    assert stolen_share((5.0, 100.0), (5.0, 100.0)) is None


def test_a_fresh_report_does_not_mark_the_code_dirty(tmp_path: Path) -> None:
    import subprocess

    from stream.bench.runner import _commit

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "bench.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    sha, dirty = _commit(tmp_path)
    assert sha != "unknown" and not dirty
    (tmp_path / "reports" / "bench.md").write_text("new\n")  # what a quick run before writes
    assert _commit(tmp_path)[1] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert _commit(tmp_path)[1] is True


def test_the_faust_relay_answers_an_event_as_the_probe_reads_a_list() -> None:
    body = orjson.dumps({"event_id": "e1", "user_id": "u1", "ts": 5, "item_id": "i"})
    answer = faust_relay_answer(body)
    assert answer is not None
    assert orjson.loads(answer) == {"user_id": "u1", "trigger": {"event_id": "e1"}}
    # what the probe could not match (no event id, not JSON, a tombstone) is not answered
    for raw in (orjson.dumps({"user_id": "u1"}), b"not json", None, b"[1]"):
        assert faust_relay_answer(raw) is None


def test_the_latency_table_shows_the_faust_floor_with_its_own_loads() -> None:
    row = {
        "load": 0.5,
        "rate_eps": 100.0,
        "p50": 2.0,
        "p95": 3.0,
        "p99": 4.0,
        "max": 5.0,
        "events": 9,
    }
    report = {
        "latency": {"pipeline": [row], "floor": [row], "faust_floor": [row | {"p99": 7.0}]},
        "latency_over_floor_ms": {"p50": 0.0, "p95": 0.0, "p99": 0.0},
        "floor_latency_ms": headline_latency({"floor": [row]}, "floor"),
        "faust_floor_latency_ms": headline_latency(
            {"faust_floor": [row | {"p99": 7.0}]}, "faust_floor"
        ),
    }
    md = "\n".join(latency_md(report))
    assert "| faust_floor | 50 % | 100.0 | 2.0 | 3.0 | 7.0 |" in md
    assert "p99 **+3.0 ms**" in md  # the Faust floor over the bare floor
    # a report from before the Faust floor existed still renders
    older = {k: v for k, v in report.items() if k != "faust_floor_latency_ms"}
    older["latency"] = {"pipeline": [row], "floor": [row]}
    md_old = "\n".join(latency_md(older))
    assert "| faust_floor |" not in md_old and "minus floor at 50 % load (what" not in md_old
    assert headline_latency(older["latency"], "faust_floor") == {}
