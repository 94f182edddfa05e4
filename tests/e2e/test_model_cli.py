"""`recstream model embed` + `model index` as a user runs them: a published, loadable lookup."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from stream.adapters import lookup_store
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


def test_embed_then_index_publishes_a_lookup_workers_can_load(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env["RECSTREAM_DATA_DIR"] = str(tmp_path)
    done = run_cli("model", "embed", "--dataset", "movielens", "--batch", "256", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "embedded 1,682 items" in done.stdout
    with np.load(tmp_path / "embeddings" / "movielens.npz") as data:
        assert data["embeddings"].shape[:2] == (3, 1682)

    done = run_cli("model", "index", "--dataset", "movielens", "--k", "10", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "built exactly" in done.stdout and "v1.npz" in done.stdout
    lookup = lookup_store.load_current(tmp_path / "lookup")
    assert lookup is not None and len(lookup) == 1682 and lookup.k == 10
    star_wars = lookup.index["ml-50"]
    targets, strengths = lookup.related(star_wars, "buy")
    assert targets.size == 10 and star_wars not in targets.tolist()
    assert (np.diff(strengths) <= 1e-9).all() and (strengths >= 0).all()

    # approximately (as a catalog above RECSTREAM_LOOKUP_EXACT_MAX is), checked against exact
    # rows: the films' embeddings group, so the check keeps the approximate rows
    done = run_cli(
        "model", "index", "--dataset", "movielens", "--k", "10", "--exact-max", "0", env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "built approximately (sampled recall" in done.stdout and "v2.npz" in done.stdout
    approximate = lookup_store.load_current(tmp_path / "lookup")
    assert approximate is not None and len(approximate) == 1682
    for role in ("view", "buy"):
        assert (approximate.rows[role] == lookup.rows[role]).mean() > 0.98

    done = run_cli("model", "index", "--dataset", "movielens", "--k", "0", env=env)
    assert done.returncode != 0 and "--k" in done.stderr
