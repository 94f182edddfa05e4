"""`model fit-ranking` then `eval --profile FILE` on a generic folder, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


def test_fit_ranking_writes_a_profile_that_eval_runs(tmp_path: Path) -> None:
    folder = tmp_path / "ml-slice"
    done = run_cli("export", "movielens", str(folder), "--max-users", "60")
    assert done.returncode == 0, done.stderr
    profile = tmp_path / "profile.json"
    done = run_cli("model", "fit-ranking", "--dataset", str(folder), "--out", str(profile))
    assert done.returncode == 0, done.stderr[-2000:]
    body = orjson.loads(profile.read_bytes())
    assert set(body["weights"]) >= {"relation", "popularity", "repeat", "view_return"}
    assert body["fit"]["lists_fit"] > 0 and "outcome" in body["fit"]

    out = tmp_path / "report.json"
    args = ("eval", "--dataset", str(folder), "--profile", str(profile), "--out", str(out))
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    report = orjson.loads(out.read_bytes())
    assert report["ranking_profile"] == f"{body['name']}@{body['version']}"
    assert report["learned"]["ranking"].startswith("given by --profile")
    assert "recall@10" in report["methods"]["engine_realtime"]["all"]

    done = run_cli("eval", "--dataset", str(folder), "--profile", "no-such-profile")
    assert done.returncode == 1 and "neither a built-in" in done.stderr
