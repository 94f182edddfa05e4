"""GC pauses are timed per generation, and freezing leaves later collections less to walk."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram

from stream.adapters.gc_pauses import GcPauses, as_worker
from stream.settings import Settings


def pauses() -> tuple[GcPauses, Histogram, Gauge]:
    r = CollectorRegistry()
    hist = Histogram("p_seconds", "doc", ["generation"], registry=r)
    frozen = Gauge("f", "doc", registry=r)
    return GcPauses(hist, frozen), hist, frozen


def count(hist: Histogram, generation: str) -> float:
    for metric in hist.collect():
        for s in metric.samples:
            if s.name.endswith("_count") and s.labels["generation"] == generation:
                return s.value
    return 0.0


def test_collections_are_timed_per_generation_only_while_installed() -> None:
    gcp, hist, _ = pauses()
    gcp.install()
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        gcp.uninstall()
    assert count(hist, "2") >= 1 and count(hist, "0") >= 1
    before = count(hist, "2")
    gc.collect(2)
    assert count(hist, "2") == before  # uninstalled: no longer observed
    assert gcp._on_gc not in gc.callbacks


def test_freeze_moves_the_heap_out_of_collection_and_reports_it() -> None:
    gcp, _, frozen = pauses()
    keep = [{"row": i} for i in range(20_000)]  # a read model built at start-up
    try:
        tracked_before = len(gc.get_objects())
        n = gcp.freeze()
        # Frozen objects can still die (another thread drops one), never join: the count only falls.
        assert len(keep) <= gc.get_freeze_count() <= n
        assert frozen._value.get() == n
        assert len(gc.get_objects()) < tracked_before - len(keep)  # not walked any more
    finally:
        gc.unfreeze()
    assert keep


def test_the_youngest_threshold_is_set_and_put_back_on_uninstall() -> None:
    gcp, _, _ = pauses()
    before = gc.get_threshold()
    gcp.install()
    try:
        gcp.set_gen0(12_345)
        assert gc.get_threshold() == (12_345, *before[1:])
        gcp.set_gen0(23_456)  # a second call still remembers the first thresholds
        assert gc.get_threshold()[0] == 23_456
    finally:
        gcp.uninstall()
    assert gc.get_threshold() == before


def test_a_zero_threshold_leaves_python_alone_and_a_negative_one_is_refused() -> None:
    gcp, _, _ = pauses()
    before = gc.get_threshold()
    gcp.set_gen0(0)
    assert gc.get_threshold() == before
    with pytest.raises(ValueError, match="gen0"):
        gcp.set_gen0(-1)
    gcp.uninstall()
    assert gc.get_threshold() == before


def test_the_threshold_setting_defaults_to_ten_thousand_and_refuses_negatives() -> None:
    assert Settings.from_env({}).gc_gen0_threshold == 10_000
    assert Settings.from_env({"RECSTREAM_GC_GEN0_THRESHOLD": "0"}).gc_gen0_threshold == 0
    with pytest.raises(ValueError, match="RECSTREAM_GC_GEN0_THRESHOLD"):
        Settings.from_env({"RECSTREAM_GC_GEN0_THRESHOLD": "-1"})


def test_as_worker_freezes_and_sets_the_threshold_then_puts_both_back() -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    keep = [{"row": i} for i in range(1_000)]
    with as_worker(True, 9_999):
        assert gc.get_threshold() == (9_999, *before[1:])
        assert gc.get_freeze_count() >= len(keep)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    with as_worker(False, 0):  # neither: the collector as it was
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    gc.freeze()  # frozen before: left frozen
    try:
        with as_worker(True, 0):
            pass
        assert gc.get_freeze_count() >= len(keep)
    finally:
        gc.unfreeze()
    with pytest.raises(ValueError, match="gen0"), as_worker(False, -1):
        pass
