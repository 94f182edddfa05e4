"""The bench's markdown report: what its tables say about a run (``stream.bench.report``)."""

from __future__ import annotations

from typing import Any

from stream.bench.report import _throughput_md


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
    assert lines[4].endswith("| - |")  # one worker: nothing to split
    assert lines[5].endswith("| 7,373 / 4,627 |")
