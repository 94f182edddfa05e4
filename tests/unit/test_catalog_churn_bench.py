"""The catalog-churn bench's harness on a tiny catalog (no timing asserted: it is a bench)."""

from __future__ import annotations

import json
from pathlib import Path

from stream.bench import catalog_churn


def test_the_three_modes_run_in_rotation_and_the_report_is_written(tmp_path: Path) -> None:
    sizes = ["--items", "400", "--changed", "24", "--rounds", "2", "--events", "1500"]
    catalog_churn.main(["--out", str(tmp_path), *sizes, "--interval-ms", "5"])
    result = json.loads((tmp_path / "catalog_churn.json").read_text())
    counts = {mode: len(runs) for mode, runs in result["runs"].items()}
    assert counts == {"thread": 2, "copy": 2, "loop": 2}
    for runs in result["runs"].values():
        for run in runs:
            assert run["update_in_use_s"] > 0 and run["timeline"]["batches"]
            assert run["batch_delay_ms_during"]["n"] >= 1
    assert set(result["summary"]) == {"thread", "copy", "loop"}
    assert "| thread |" in (tmp_path / "catalog_churn.md").read_text()
    assert (tmp_path / "catalog_churn.png").stat().st_size > 0


def test_every_change_gives_its_product_new_content_tokens() -> None:
    """Else the update would embed nothing and measure nothing."""
    scene = catalog_churn.Scene(300, events=200)
    try:
        tokenizer = scene.runtime.encoder.tokenizer
        for shift in (1, 2):
            changes = scene.changes(12, shift)
            assert len({m["item_id"] for m in changes}) == 12
            by_id = {m["item_id"]: m for m in scene.catalog}
            assert all(
                tokenizer.encode(m).tolist() != tokenizer.encode(by_id[m["item_id"]]).tolist()
                for m in changes
            )
    finally:
        scene.tmp.cleanup()
