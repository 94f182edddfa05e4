"""`python -m stream.bench.lookup_build`: both builds timed, the larger catalogs, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stream.bench import lookup_build
from tests.unit.test_lookup_ivf import grouped


def test_measure_builds_each_size_both_ways_and_the_larger_catalogs_approximately(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lookup_build, "UPDATE", 300)
    emb = grouped(2500, groups=50)
    result = lookup_build.measure(emb, sizes=(1500, 0), copies=(2,))
    first, whole = result["measured"]
    assert (first["items"], whole["items"]) == (1500, 2500)
    for row in result["measured"]:
        assert row["exact_s"] > 0 and row["approximate_s"] > 0
        # (from the unrounded seconds: these builds take a few hundredths of a second)
        assert row["speedup"] == pytest.approx(row["exact_s"] / row["approximate_s"], rel=0.3)
        assert row["approximate"] and set(row["sampled_recall"]) == {"view", "buy"}
        assert min(row["rows_identical"].values()) > 0.9  # grouped items: the exact rows
    for row in result["measured"] + result["larger"]:  # an update, both ways, at every size
        assert row["update_exact_s"] > 0 and row["update_worker_s"] > 0
        assert min(row["update_rows_identical"].values()) > 0.9
        # staged: the worker way's rows (on these small catalogs an update rewrites most rows
        # and turns into a copy on the way; at 68k items its journal is ~1 % of a copy)
        assert all(row["update_staged_same_rows"].values()) and row["update_staged_s"] > 0
        assert row["update_journal_mb"] > 0 and row["update_copy_mb"] > 0
        assert min(row["update_rows_written"].values()) >= 150  # (the new items' own rows)
    (big,) = result["larger"]
    assert big["items"] == 5000
    per_pair = whole["exact_ns_per_pair"] * 5000**2 / 1e9
    assert big["exact_s_extrapolated"] == pytest.approx(per_pair, rel=0.05, abs=0.06)  # (0.1 s)


def test_jittered_copies_keep_the_items_and_stay_unit_vectors() -> None:
    emb = grouped(100, groups=5)
    big = lookup_build.jittered(emb, 3)
    assert big.shape == (3, 300, emb.shape[2])
    np.testing.assert_array_equal(big[:, :100], emb)
    np.testing.assert_allclose(np.linalg.norm(big, axis=2), 1.0, atol=1e-5)
    assert not np.allclose(big[:, 100:200], emb)


def test_the_command_writes_json_markdown_and_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(lookup_build, "complete_journey_embeddings", lambda: grouped(2000, 40))
    monkeypatch.setattr(lookup_build, "UPDATE", 300)
    lookup_build.main(["--out", str(tmp_path), "--sizes", "0", "--copies", "2"])
    result = json.loads((tmp_path / "lookup_build.json").read_text())
    assert [r["items"] for r in result["measured"]] == [2000]
    assert [r["items"] for r in result["larger"]] == [4000]
    text = (tmp_path / "lookup_build.md").read_text()
    assert "| 2,000 |" in text and "(extrapolated)" in text and "An update of 300" in text
    assert (tmp_path / "lookup_build.png").stat().st_size > 10_000
    assert "[lookup] 2,000 items, exact then approximate" in capsys.readouterr().out
