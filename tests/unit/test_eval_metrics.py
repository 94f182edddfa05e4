"""Evaluation metrics against hand-computed cases, and report rendering end to end."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.evaluation.metrics import (
    COLD_MAX,
    WARM_MAX,
    MetricAccumulator,
    hit_at_k,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    segment_for,
)
from stream.evaluation.report import _family, human_interval, render_markdown, write_report

L2 = math.log2
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_worked_example() -> None:
    ranked, targets = ["a", "b", "c", "d"], {"b", "d", "x"}
    assert recall_at_k(ranked, targets, k=4) == pytest.approx(2 / 3)
    ideal = 1 + 1 / L2(3) + 1 / L2(4)
    assert ndcg_at_k(ranked, targets, k=4) == pytest.approx((1 / L2(3) + 1 / L2(5)) / ideal)
    assert reciprocal_rank(ranked, targets, k=4) == pytest.approx(0.5)
    assert hit_at_k(ranked, targets, k=4) == 1.0


def test_cut_at_k() -> None:
    ranked, targets = ["a", "b", "c", "d"], {"b", "d", "x"}
    assert recall_at_k(ranked, targets, k=3) == pytest.approx(1 / 3)
    # IDCG over min(|targets|, k) = 2 ideal hits when k = 2.
    assert ndcg_at_k(ranked, targets, k=2) == pytest.approx((1 / L2(3)) / (1 + 1 / L2(3)))
    assert reciprocal_rank(["a", "b", "c"], {"c"}, k=2) == 0.0  # MRR@k: hit below k is 0
    assert hit_at_k(["a", "b", "c"], {"c"}, k=2) == 0.0
    assert hit_at_k(["a", "b", "c"], {"c"}, k=3) == 1.0


def test_perfect_and_empty() -> None:
    assert ndcg_at_k(["x", "y"], {"x", "y"}, k=10) == pytest.approx(1.0)
    assert recall_at_k(["x"], {"x"}) == 1.0
    for fn in (recall_at_k, ndcg_at_k, reciprocal_rank, hit_at_k):
        assert fn(["a", "b"], set()) == 0.0
        assert fn([], {"a"}) == 0.0
        assert fn(["a", "b"], {"z"}) == 0.0


def test_duplicates_count_once() -> None:
    # "b" repeated: one hit at rank 2; the repeat keeps its slot but earns nothing.
    ranked = ["a", "b", "b", "c"]
    assert recall_at_k(ranked, {"b"}, k=4) == 1.0
    assert ndcg_at_k(ranked, {"b"}, k=4) == pytest.approx(1 / L2(3))
    assert recall_at_k(ranked, {"b", "c"}, k=3) == pytest.approx(0.5)  # repeat took c's slot
    assert ndcg_at_k(["b", "b"], {"b", "z"}, k=2) == pytest.approx(1 / (1 + 1 / L2(3)))
    assert reciprocal_rank(["a", "b", "b"], {"b"}) == pytest.approx(0.5)


def test_bad_k() -> None:
    with pytest.raises(ValueError):
        recall_at_k(["a"], {"a"}, k=0)
    with pytest.raises(ValueError):
        MetricAccumulator(k=0)


def test_segment_for() -> None:
    assert (COLD_MAX, WARM_MAX) == (5, 20)
    assert [segment_for(n) for n in (0, 4, 5, 19, 20, 500)] == [
        "cold",
        "cold",
        "warm",
        "warm",
        "heavy",
        "heavy",
    ]


def test_accumulator_by_hand() -> None:
    acc = MetricAccumulator(k=2)
    acc.add("pop", "cold", ["a", "b", "c"], {"a"})  # recall 1, ndcg 1, rr 1, hit 1
    acc.add("pop", "warm", ["a", "b"], {"b", "c"})  # recall .5, ndcg (1/log2 3)/(1+1/log2 3)
    acc.add("pop", "cold", ["c", "d"], {"a"})  # all zero
    acc.add("ba", "heavy", ["b", "b", "a"], {"b"})  # dup: top-2 shows only b
    pop = {"a": 3.0, "b": 1.0}  # sum 4, catalog 4 -> p(a)=4/8, p(b)=2/8, p(c)=p(d)=1/8
    s = acc.summary(catalog_size=4, popularity=pop)
    assert acc.methods == ["pop", "ba"]
    assert set(s) == {"pop", "ba"}
    assert set(s["pop"]) == {"cold", "warm", "all"}  # no heavy: n = 0 is omitted
    assert set(s["ba"]) == {"heavy", "all"}

    cold = s["pop"]["cold"]
    assert cold["n"] == 2
    assert cold["recall@2"] == pytest.approx(0.5)
    assert cold["ndcg@2"] == pytest.approx(0.5)
    assert cold["mrr@2"] == pytest.approx(0.5)
    assert cold["hit_rate@2"] == pytest.approx(0.5)
    assert cold["coverage"] == pytest.approx(4 / 4)  # a, b, c, d
    # shown slots: a, b, c, d -> info 1 + 2 + 3 + 3
    assert cold["novelty"] == pytest.approx(9 / 4)

    ndcg_warm = (1 / L2(3)) / (1 + 1 / L2(3))
    everything = s["pop"]["all"]
    assert everything["n"] == 3
    assert everything["recall@2"] == pytest.approx(1.5 / 3)
    assert everything["ndcg@2"] == pytest.approx((1 + ndcg_warm) / 3)
    assert everything["mrr@2"] == pytest.approx(1.5 / 3)
    assert everything["hit_rate@2"] == pytest.approx(2 / 3)
    # shown slots: a, b, a, b, c, d -> 1 + 2 + 1 + 2 + 3 + 3
    assert everything["novelty"] == pytest.approx(12 / 6)
    assert set(everything) == {
        "recall@2",
        "ndcg@2",
        "mrr@2",
        "hit_rate@2",
        "coverage",
        "novelty",
        "n",
    }

    ba = s["ba"]["all"]
    assert ba == s["ba"]["heavy"]
    assert ba["recall@2"] == 1.0 and ba["mrr@2"] == 1.0 and ba["n"] == 1
    assert ba["coverage"] == pytest.approx(1 / 4)  # the repeat at slot 2 shows nothing new
    assert ba["novelty"] == pytest.approx(2.0)


def test_accumulator_unknown_segment_and_unseen_items() -> None:
    acc = MetricAccumulator(k=10)
    with pytest.raises(ValueError):
        acc.add("m", "lukewarm", ["a"], {"a"})
    with pytest.raises(ValueError):
        MetricAccumulator(segments=("cold", "all"))
    acc.add("m", "warm", ["z"], {"a"})
    s = acc.summary(catalog_size=2, popularity={})  # p(z) = 1/2 by add-one smoothing
    assert s["m"]["warm"]["novelty"] == pytest.approx(1.0)
    assert s["m"]["warm"]["recall@10"] == 0.0
    acc.add("empty", "cold", [], {"a"})
    assert acc.summary(2, {})["empty"]["all"]["novelty"] == 0.0


def _report() -> dict[str, Any]:
    acc = MetricAccumulator()
    for method, ranked in {
        "popularity": ["a", "b"],
        "buy_again": ["b", "a"],
        "engine_batch_24h": ["c", "a"],
        "engine_batch_2min": ["a", "c"],
        "engine_realtime": ["a", "b", "c"],
    }.items():
        acc.add(method, "cold", ranked, {"a"})
        acc.add(method, "heavy", ranked, {"b", "c"})
    methods = acc.summary(catalog_size=5, popularity={"a": 5, "b": 2})
    methods["cooccurrence_frozen"] = {"all": {"recall@10": 0.1, "n": 3}}  # partial on purpose
    curve = [
        {"method": "engine", "interval_s": iv, "recall@10": r, "ndcg@10": r / 2}
        for iv, r in ((86400.0, 0.2), (0.0, 0.4), (120.0, 0.35))
    ]
    return {
        "dataset": "synthetic",
        "title": "Prequential evaluation on synthetic",
        "command": "recstream evaluate --dataset synthetic --seed 7",
        "seed": 7,
        "k": 10,
        "created": "2025-01-01T00:00:00+00:00",
        "data": {
            "users": 2,
            "items": 5,
            "events": 10,
            "targets": 4,
            "evaluated_targets": 4,
            "test_start": "2017-06-01T00:00:00",
            "split": "last 20%",
        },
        "freshness": {
            "median_gap_s": 5400.0,
            "share_prev_event_since_refresh": {"120": 0.25, "86400": 0.9},
            "explanation": "Batch models miss recent events.",
        },
        "methods": methods,
        "refresh_curve": curve,
        "notes": ["first note", "second note"],
    }


def test_write_report(tmp_path: Path) -> None:
    report = _report()
    out = tmp_path / "sub" / "eval-synthetic.json"
    paths = write_report(report, out)
    md = tmp_path / "sub" / "eval-synthetic.md"
    refresh = tmp_path / "sub" / "eval-synthetic-refresh.png"
    segments = tmp_path / "sub" / "eval-synthetic-segments.png"
    assert paths == [out, md, refresh, segments]
    assert orjson.loads(out.read_bytes()) == report
    for png in (refresh, segments):
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    text = md.read_text()
    assert "```bash\nrecstream evaluate --dataset synthetic --seed 7\n```" in text
    assert "# Prequential evaluation on synthetic" in text
    assert "| `engine_realtime` | **1.0000** |" in text  # best recall@10 in bold
    assert "| `popularity` | 0.7500 |" in text
    assert "| `cooccurrence_frozen` | **" not in text
    assert "| `cooccurrence_frozen` | 0.1000 | — |" in text
    assert "first note" in text and "- second note" in text
    assert "](eval-synthetic-refresh.png)" in text and "](eval-synthetic-segments.png)" in text
    assert "25.0% with a refresh every 2 min" in text and "24 h" in text
    assert "split: last 20%" in text


def test_report_tolerates_missing_sections(tmp_path: Path) -> None:
    paths = write_report({"dataset": "empty", "command": "x"}, tmp_path / "r.json")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert "No methods evaluated." in render_markdown({"command": "x"})


def test_human_interval() -> None:
    assert [human_interval(s) for s in (0, 120, 86400, 3600, 90)] == [
        "real-time",
        "2 min",
        "24 h",
        "1 h",
        "90 s",
    ]


def test_refresh_curve_per_variant_names(tmp_path: Path) -> None:
    """Per-variant method names join into one engine curve; a frozen baseline stays a line."""
    assert {_family(m) for m in ("engine_realtime", "engine_batch_2min", "engine_batch_24h")} == {
        "engine"
    }
    assert _family("cooccurrence_frozen") == "cooccurrence_frozen"
    report = _report()
    names = {0.0: "engine_realtime", 120.0: "engine_batch_2min", 86400.0: "engine_batch_24h"}
    for point in report["refresh_curve"]:
        point["method"] = names[point["interval_s"]]
    paths = write_report(report, tmp_path / "variants.json")
    assert paths[2].read_bytes().startswith(PNG_MAGIC)
