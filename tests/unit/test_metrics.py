"""Metric declarations and the sampled gauges, without a broker."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from stream.adapters.loop_histogram import LoopHistogram
from stream.adapters.metrics import STAGES, Metrics
from stream.adapters.runtime_metrics import RuntimeSampler, group_lag
from stream.settings import Settings

UNBOUNDED = {"user", "user_id", "item", "item_id", "event_id", "session_id", "key"}


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


def test_no_metric_has_an_id_label_and_names_follow_prometheus_conventions() -> None:
    m = Metrics()
    for family in m.registry.collect():
        assert family.name.startswith("recstream_")
        for s in family.samples:
            assert not (set(s.labels) & UNBOUNDED), (s.name, s.labels)
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


def test_stage_and_list_helpers_record_under_bounded_labels() -> None:
    m = Metrics()
    for stage in STAGES:
        m.observe_stage(stage, 0.0003)
    m.on_list("for_you", "default@1", "A", 20)
    m.on_list("for_you", "default@1", "A", 3)
    m.on_qdrant_call(40, 0.002, failed=True, rejected=0)
    m.on_qdrant_call(40, 0.002, failed=False, rejected=2)
    assert sample(m, "recstream_stage_seconds_count", {"stage": "decode"}) == 1
    assert sample(m, "recstream_stage_seconds_count", {"stage": "qdrant"}) == 3
    lists = {"feed": "for_you", "profile": "default@1", "variant": "A"}
    assert sample(m, "recstream_lists_emitted_total", lists) == 2
    assert sample(m, "recstream_list_size_items_sum", {"feed": "for_you"}) == 23
    assert sample(m, "recstream_last_list_timestamp_seconds", {"feed": "for_you"}) is None
    m.sync_sampled()  # the watchdog publishes freshness once a second
    assert (sample(m, "recstream_last_list_timestamp_seconds", {"feed": "for_you"}) or 0) > 0
    assert sample(m, "recstream_qdrant_errors_total") == 1
    assert sample(m, "recstream_qdrant_rejected_points_total") == 2
    assert sample(m, "recstream_qdrant_batch_points_count") == 2
    m.on_qdrant_cpu(0.25)  # the writer's thread
    m.on_qdrant_cpu(0.5, "build")
    m.on_qdrant_cpu(0.25, "write")
    assert sample(m, "recstream_qdrant_cpu_seconds_total", {"part": "write"}) == 0.5
    assert sample(m, "recstream_qdrant_cpu_seconds_total", {"part": "build"}) == 0.5
    assert b"recstream_build_info{" in generate_latest(m.registry)


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    assigned: set[TP]
    high: dict[TP, int | None]
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return self.assigned

    def highwater(self, tp: TP) -> int | None:
        return self.high[tp]


def test_group_lag_counts_input_partitions_only_and_skips_unknown_highwater() -> None:
    a0, a1, cl, b0 = TP("clicks", 0), TP("clicks", 1), TP("app-profiles-changelog", 0), TP("x", 0)
    consumer = FakeConsumer({a0, a1, cl, b0}, {a0: 10, a1: None, cl: 500, b0: 3}, {a0: 7})
    lag = group_lag(SimpleNamespace(_consumer=consumer), ["clicks"])
    assert lag == {("group", "clicks", 0): 3}
    consumer._committed_offset = {}
    assert group_lag(SimpleNamespace(_consumer=consumer), ["clicks"]) == {
        ("group", "clicks", 0): 10
    }


class FakeReplica:
    def __init__(self) -> None:
        self.result: dict[tuple[str, str, int], int] = {("replica", "stock", 0): 4}
        self.snapshots = SimpleNamespace(written_at=1_700_000_000.5, last_loop_seconds=0.04)
        self.time_bounded = 2
        self.stale_stock = 3

    async def lag(self) -> dict[tuple[str, str, int], int]:
        return self.result


def fake_rapp(consumer: FakeConsumer) -> Any:
    ranking = SimpleNamespace(label="default@1")
    engine = SimpleNamespace(
        catalog=[1, 2, 3], ranking=ranking, variant="A", relations=SimpleNamespace()
    )
    return SimpleNamespace(
        settings=Settings(),
        engine=engine,
        writer=SimpleNamespace(pending=5, oldest_pending_seconds=0.25),
        pipeline=SimpleNamespace(ready=asyncio.Event(), users_assigned=False),
        faust_app=SimpleNamespace(_consumer=consumer),
        replica=FakeReplica(),
        store=SimpleNamespace(size_bytes=lambda: 4096, user_count=lambda: 7),
        pfeed=SimpleNamespace(pending_items=12, last_update_seconds=1.5),
    )


def test_sampler_retires_revoked_partitions_and_replaced_profiles() -> None:
    m = Metrics()
    tp0, tp1 = TP("clicks", 0), TP("clicks", 1)
    consumer = FakeConsumer({tp0, tp1}, {tp0: 5, tp1: 9}, {tp0: 5, tp1: 1})
    rapp = fake_rapp(consumer)
    sampler = RuntimeSampler(m, rapp)
    asyncio.run(sampler.sample())
    lag = "recstream_consumer_lag_messages"
    assert sample(m, lag, {"consumer": "group", "topic": "clicks", "partition": "1"}) == 8
    assert sample(m, lag, {"consumer": "replica", "topic": "stock", "partition": "0"}) == 4
    assert sample(m, "recstream_qdrant_pending_points") == 5
    assert sample(m, "recstream_catalog_items") == 3
    assert sample(m, "recstream_catalog_time_bounded") == 2
    assert sample(m, "recstream_stale_stock") == 3
    assert sample(m, "recstream_state_users") == 7
    assert sample(m, "recstream_learned_snapshot_timestamp_seconds") == 1_700_000_000.5
    assert sample(m, "recstream_learned_snapshot_loop_seconds") == 0.04
    assert sample(m, "recstream_ranking_profile_info", {"profile": "default@1", "variant": "A"})
    assert sample(m, "recstream_model_info", {"model": "simplenamespace", "version": "online"})
    assert sample(m, "recstream_lookup_pending_items") == 12
    assert sample(m, "recstream_lookup_last_update_seconds") == 1.5

    consumer.assigned = {tp0}  # rebalance took partition 1 away
    rapp.engine.ranking = SimpleNamespace(label="default@2")  # hot swap
    asyncio.run(sampler.sample())
    assert sample(m, lag, {"consumer": "group", "topic": "clicks", "partition": "1"}) is None
    assert sample(m, lag, {"consumer": "group", "topic": "clicks", "partition": "0"}) == 0
    assert (
        sample(m, "recstream_ranking_profile_info", {"profile": "default@1", "variant": "A"})
        is None
    )
    assert (
        sample(m, "recstream_ranking_profile_info", {"profile": "default@2", "variant": "A"}) == 1
    )


def test_readme_documents_every_metric_with_its_labels() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = [line.split("|") for line in readme.splitlines() if line.startswith("| `recstream_")]
    m = Metrics()
    declared = {
        (v._name + ("_total" if isinstance(v, Counter) else ""), v._labelnames)
        for v in vars(m).values()
        if isinstance(v, MetricWrapperBase)
    } | {(v.name, v.labelnames) for v in vars(m).values() if isinstance(v, LoopHistogram)}
    assert len(declared) == len(list(m.registry.collect()))
    for name, labelnames in declared:
        rows = [cells for cells in table if f"`{name}`" in cells[1]]
        assert rows, f"{name} is not in the README's metric list"
        assert set(labelnames) == set(re.findall(r"\w+", rows[0][3])), name


def test_loop_histogram_exposes_what_prometheus_client_would() -> None:
    """Same observations, same text: Prometheus cannot tell the lock-free one apart."""
    buckets = (0.0001, 0.001, 0.01, 0.1, 1.0, 5.0)
    values = [0.00005, 0.0001, 0.0007, 0.001, 0.02, 0.5, 1.0, 3.0, 7.0, 0.0]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = LoopHistogram("x_seconds", "doc", ["stage"], buckets, ours)
    reference = Histogram("x_seconds", "doc", ["stage"], buckets=buckets, registry=theirs)
    for v in values:
        fast.labels("decode").observe(v)
        reference.labels("decode").observe(v)

    def lines(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return [line for line in text.splitlines() if "_created" not in line]

    assert lines(ours) == lines(theirs)


def test_a_scrape_can_ask_for_only_the_metrics_it_reads() -> None:
    from stream.broker import free_port
    from stream.local_worker import scrape_metrics

    metrics = Metrics()
    port = free_port()
    metrics.serve(port)
    metrics.processed.labels("clicks").inc(3)
    metrics.observe_stage("engine", 0.001)
    full = scrape_metrics(port)
    only = scrape_metrics(port, ("recstream_events_processed_total",))
    assert full is not None and only is not None
    assert only['recstream_events_processed_total{topic="clicks"}'] == 3.0
    assert all(name.startswith("recstream_events_processed_total") for name in only)
    assert any(name.startswith("recstream_stage_seconds") for name in full)


class FailingReplica:
    def __init__(self, result: dict[tuple[str, str, int], int]) -> None:
        self.result = result
        self.fail = False
        self.time_bounded = 0
        self.stale_stock = 0

    async def lag(self) -> dict[tuple[str, str, int], int]:
        if self.fail:
            raise TimeoutError("position() waits for an offset reset")
        return self.result


def test_a_reader_that_cannot_answer_hides_no_other_and_keeps_its_last_lag() -> None:
    m = Metrics()
    rapp = fake_rapp(FakeConsumer(set(), {}, {}))
    rapp.replica = FailingReplica({("replica", "stock", 0): 4})
    rapp.items = FailingReplica({("group", "catalog", 0): 2})
    sampler = RuntimeSampler(m, rapp)
    asyncio.run(sampler.sample())
    lag = "recstream_consumer_lag_messages"
    rapp.replica.fail = True
    rapp.items.result = {("group", "catalog", 0): 9}
    asyncio.run(sampler.sample())
    assert sample(m, lag, {"consumer": "replica", "topic": "stock", "partition": "0"}) == 4
    assert sample(m, lag, {"consumer": "group", "topic": "catalog", "partition": "0"}) == 9


def test_a_worker_is_ready_once_its_engine_is_prepared_and_its_users_are_assigned() -> None:
    m = Metrics()
    rapp = fake_rapp(FakeConsumer(set(), {}, {}))
    sampler = RuntimeSampler(m, rapp)
    readiness = []
    for prepared, assigned in ((False, False), (True, False), (False, True), (True, True)):
        rapp.pipeline.ready = asyncio.Event()
        if prepared:
            rapp.pipeline.ready.set()
        rapp.pipeline.users_assigned = assigned
        asyncio.run(sampler.sample())
        readiness.append(sample(m, "recstream_worker_ready"))
    assert readiness == [0, 0, 0, 1]
