"""The bench's markdown report: what its tables say about a run (``stream.bench.report``)."""

from __future__ import annotations

from typing import Any

from stream.bench.report import _throughput_md
from stream.bench.throughput import Drain


def test_the_throughput_table_shows_how_the_backlog_fell_to_the_workers() -> None:
    def run(eps: float, per_worker: list[int]) -> dict[str, Any]:
        return {"eps": eps, "events": sum(per_worker), "seconds": 1.0, "startup_s": 6.5,
                "cpu_cores": {}, "per_worker": per_worker}  # fmt: skip

    report = {
        "throughput_runs": {"pipeline": run(2000, [12000]), "two_workers": run(2500, [7373, 4627])},
        "ratios": {"two_workers_vs_pipeline": 1.25},
    }
    lines = _throughput_md(report)
    assert "events per worker" in lines[2]
    assert lines[4].endswith("| - | - |")  # one worker: nothing to split
    assert lines[5].endswith("| 7,373 / 4,627 | - |")


def test_a_drain_says_how_many_lists_an_event_it_emitted() -> None:
    drain = Drain(eps=5000.0, events=20000, seconds=4.0, startup_s=6.5, lists=4000)
    assert drain.to_dict()["lists_per_event"] == 0.2
    assert "lists_per_event" not in Drain(eps=1.0, events=1, seconds=1.0, startup_s=0).to_dict()
    report = {"throughput_runs": {"pipeline": drain.to_dict()}, "ratios": {}}
    lines = _throughput_md(report)
    assert "lists an event" in lines[2] and lines[4].endswith("| - | 0.2 |")
    assert any(line.startswith("`lists an event`") for line in lines)
