"""``python -m stream.bench.grocery``: Complete Journey orders through the in-process runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.bench import grocery
from stream.bench.grocery import STAGES, bucket_label, main, measure, summarise


def _row(lines: int, rank_us: int) -> dict[str, int]:
    return dict.fromkeys(STAGES, 1000) | {"rank": rank_us * 1000, "lines": lines, "events": 1}


def test_orders_are_split_by_basket_size() -> None:
    rows = [_row(1, 100), _row(4, 300), _row(7, 500), _row(55, 2000)]
    got = summarise(rows)
    assert got["orders"] == 4
    assert got["lines_mean"] == 16.75
    assert [b["lines"] for b in got["by_lines"]] == ["1-4", "5-9", "40+"]
    assert [b["orders"] for b in got["by_lines"]] == [2, 1, 1]
    assert got["by_lines"][0]["stages_us"]["rank"] == 200.0
    assert got["by_lines"][0]["total_us"] == 205.0  # five other stages of 1 µs
    assert got["stages_us"]["rank"] == 725.0
    assert got["total_us"]["mean"] == 730.0
    assert got["total_us"]["p50"] == 505.0  # the nearest rank: the third of four
    assert got["total_us"]["p99"] == 2005.0


def test_an_empty_replay_summarises_to_zeros() -> None:
    assert summarise([]) == {
        "orders": 0,
        "lines_mean": 0.0,
        "total_us": {"mean": 0.0, "p50": 0.0, "p99": 0.0},
        "stages_us": dict.fromkeys(STAGES, 0.0),
        "by_lines": [],
    }


def test_bucket_labels() -> None:
    assert bucket_label(10, 20) == "10-19"
    assert bucket_label(40, 10**9) == "40+"


def test_a_small_replay_times_real_orders_against_synthetic_bursts() -> None:
    result = measure(households=3, seed=1, synthetic_events=200, pfeed=False)
    assert result["orders"] > 0
    assert sum(b["orders"] for b in result["by_lines"]) == result["orders"]
    assert result["lines_mean"] >= 1
    assert result["total_us"]["mean"] > 0 and result["synthetic"]["total_us_mean"] > 0
    assert result["order_vs_synthetic_burst"] == round(
        result["total_us"]["mean"] / result["synthetic"]["total_us_mean"], 2
    )
    assert result["state"]["users"] == 3  # every sampled household ordered
    assert 0 < result["state"]["profile_bytes_mean"] <= result["state"]["profile_bytes_max"]


def test_the_command_writes_json_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def small(households: int, seed: int, synthetic_events: int) -> dict[str, object]:
        assert (households, seed, synthetic_events) == (2, 5, 100)
        return measure(households, seed, synthetic_events, pfeed=False)

    monkeypatch.setattr(grocery, "measure", small)
    main(["--households", "2", "--seed", "5", "--synthetic-events", "100", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "grocery.json").read_text())
    assert written["households"] == 2 and written["orders"] > 0
    assert (tmp_path / "grocery.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        main(["--households", "0", "--out", str(tmp_path)])
