"""``python -m stream.bench.maturity``: a steady stream's cost as users' histories grow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.bench import maturity
from stream.bench.maturity import FRESH_PREFIX, main, measure


def test_segments_follow_growing_histories_and_the_control_has_new_users() -> None:
    result = measure(events=900, segments=3, users=40, pfeed=False)
    rows = result["segments"]
    assert [r["events"] for r in rows] == [300, 300, 300]
    assert all(r["cpu_us_per_event"] > 0 and r["bursts"] > 0 for r in rows)
    histories = [r["history"]["events"] for r in rows]
    assert histories[0] < histories[-1]  # the same 40 users, each segment adds to them
    assert all(r["history"]["users"] <= 40 for r in rows)
    control = result["new_users_at_end"]
    assert control["events"] == 300
    # the control replays the first segment under new user ids: the same histories result
    # (not the same bytes: longer ids, and lists ranked by an engine that learned more)
    same = ("users", "events", "queries", "long_features")
    assert {k: control["history"][k] for k in same} == {k: rows[0]["history"][k] for k in same}
    first = rows[0]["cpu_us_per_event"]
    assert result["last_vs_first"] == round(rows[-1]["cpu_us_per_event"] / first, 2)
    assert result["new_users_vs_first"] == round(control["cpu_us_per_event"] / first, 2)


def test_history_of_reads_only_stored_users() -> None:
    from stream.bench.inprocess import BurstRunner, build_engine

    runner = BurstRunner(build_engine([]))
    assert maturity.history_of(runner, ["nobody"])["users"] == 0


def test_no_workload_user_id_looks_like_a_control_user() -> None:
    from stream.bench.workload import WorkloadConfig, generate_events

    cfg = WorkloadConfig(items=50, users=20)
    catalog = [{"item_id": f"i{n}", "title": "t"} for n in range(50)]
    assert not any(
        str(e["user_id"]).startswith(FRESH_PREFIX) for e in generate_events(catalog, cfg, 300)
    )


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        measure(events=2, segments=3)
    with pytest.raises(ValueError):
        measure(events=10, segments=0)


def test_the_command_writes_json_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def small(events: int, segments: int, seed: int) -> dict[str, object]:
        assert (events, segments, seed) == (400, 2, 3)
        return measure(events, segments, seed, users=30, pfeed=False)

    monkeypatch.setattr(maturity, "measure", small)
    main(["--events", "400", "--segments", "2", "--seed", "3", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "maturity.json").read_text())
    assert len(written["segments"]) == 2 and written["events"] == 400
    assert (tmp_path / "maturity.png").read_bytes()[:4] == b"\x89PNG"
