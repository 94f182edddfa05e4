"""The pause-cost tool: gaps take turns in blocks, settling bursts are not counted, and a
small run times every gap on the same kind of bursts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.bench.wake_cost import assign, counted, main, measure, summarise


def test_gaps_take_turns_in_blocks() -> None:
    assert assign(7, [0.0, 3.0], block=2) == [0.0, 0.0, 3.0, 3.0, 0.0, 0.0, 3.0]
    with pytest.raises(ValueError):
        assign(3, [])
    with pytest.raises(ValueError):
        assign(3, [1.0], block=0)


def test_the_first_bursts_of_a_block_only_settle() -> None:
    assert [counted(i, block=4, settle=1) for i in range(8)] == [
        False, True, True, True, False, True, True, True,
    ]  # fmt: skip


def test_summary_ratios_are_against_the_smallest_gap() -> None:
    out = summarise({3.0: [300.0, 500.0], 0.0: [200.0, 200.0, 200.0]})
    assert out["baseline_gap_ms"] == 0.0
    assert [r["gap_ms"] for r in out["gaps"]] == [0.0, 3.0]
    assert out["gaps"][0] == {
        "gap_ms": 0.0, "bursts": 3, "mean_us": 200.0, "p50_us": 200.0, "ratio": 1.0,
    }  # fmt: skip
    assert out["gaps"][1]["mean_us"] == 400.0 and out["gaps"][1]["ratio"] == 2.0
    assert summarise({}) == {"gaps": []}


def test_a_small_run_times_every_gap() -> None:
    result = measure(events=400, gaps=[0.0, 0.2], pfeed=False, progress_every=0)
    rows = {r["gap_ms"]: r for r in result["gaps"]}
    assert set(rows) == {0.0, 0.2}
    assert all(r["bursts"] > 0 and r["mean_us"] > 0 for r in rows.values())
    assert rows[0.0]["ratio"] == 1.0 and result["spin"] is False


def test_the_command_writes_json_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stream.bench.wake_cost as wake

    def small(events: int, gaps: list[float], seed: int, spin: bool) -> dict[str, object]:
        return measure(200, gaps, seed, spin, progress_every=0, pfeed=False)

    monkeypatch.setattr(wake, "measure", small)
    main(["--gaps", "0,0.1", "--spin", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "wake_cost_spin.json").read_text())
    assert result["spin"] is True and len(result["gaps"]) == 2
    assert (tmp_path / "wake_cost_spin.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        main(["--gaps", "-1", "--out", str(tmp_path)])
