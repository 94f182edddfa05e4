"""`recstream profile push | list | compare` as a user runs them: exit codes, one-line reasons."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.adapters.metrics import Metrics
from stream.broker import free_port
from stream.profile_cli import live_ranking
from tests.conftest import new_deployment
from tests.e2e.test_cli import run_cli

pytestmark = pytest.mark.e2e


def env_without_recstream(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    return {**env, **extra}


def write(path: Path, body: Any) -> Path:
    path.write_bytes(orjson.dumps(body) if not isinstance(body, bytes) else body)
    return path


def test_push_refuses_an_invalid_or_missing_file_before_publishing(tmp_path: Path) -> None:
    # no broker anywhere: the body is checked before any connection is made
    env = env_without_recstream(RECSTREAM_KAFKA_BOOTSTRAP="127.0.0.1:1")
    bad = write(tmp_path / "bad.json", {"name": "default", "version": 2, "size": 0})
    done = run_cli("profile", "push", str(bad), env=env, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "'size'" in done.stderr, done.stderr
    shares = [{"name": "A", "share": 0.6}, {"name": "B", "share": 0.6}]
    uneven = write(tmp_path / "ab.json", {"name": "default", "version": 2, "variants": shares})
    done = run_cli("profile", "push", str(uneven), env=env, timeout=60)
    assert done.returncode == 1 and "sum to 1" in done.stderr
    done = run_cli("profile", "push", str(tmp_path / "nope.json"), env=env, timeout=60)
    assert done.returncode == 1 and "cannot read" in done.stderr
    broken = write(tmp_path / "broken.json", b'{"name": ')
    done = run_cli("profile", "push", str(broken), env=env, timeout=60)
    assert done.returncode == 1 and "not valid JSON" in done.stderr


def test_push_refuses_a_version_not_above_the_published_one_unless_forced(
    broker: Any, tmp_path: Path
) -> None:
    dep = new_deployment(broker, tmp_path)
    body = write(tmp_path / "v2.json", {"name": "default", "version": 2})
    first = run_cli("profile", "push", str(body), env=dep.env, timeout=60)
    assert first.returncode == 0 and "pushed default@2" in first.stdout, first.stderr
    again = run_cli("profile", "push", str(body), env=dep.env, timeout=60)
    assert again.returncode == 1 and "not above the published default@2" in again.stderr
    forced = run_cli("profile", "push", str(body), "--force", env=dep.env, timeout=60)
    assert forced.returncode == 0
    clash = write(tmp_path / "clash.json", {"name": "default", "version": 3, "shadow": True})
    refused = run_cli("profile", "push", str(clash), "--force", env=dep.env, timeout=60)
    assert refused.returncode == 1 and "name of its own" in refused.stderr
    shadow = write(tmp_path / "s.json", {"name": "cand", "version": 1, "shadow": True})
    assert run_cli("profile", "push", str(shadow), env=dep.env, timeout=60).returncode == 0
    listed = run_cli("profile", "list", env=dep.env, timeout=60)
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == ["cand@1 shadow", "default@2"]
    # what tools that rank outside a worker (recs --explain) should rank with
    ranking, variant = asyncio.run(live_ranking(dep.settings, "u1"))
    assert (ranking.label, variant) == ("default@2", "A")


def test_compare_reads_and_sums_the_workers_metrics(tmp_path: Path) -> None:
    ports = []
    for overlap in (0.2, 0.6):  # two "workers" serving real Metrics registries
        m = Metrics()
        labels = ("default@2", "cand@1", "for_you")
        m.shadow_lists.labels(*labels).inc()
        m.shadow_overlap.labels(*labels).observe(overlap)
        m.shadow_correlation.labels(*labels).observe(-0.2)
        port = free_port()
        m.serve(port)  # daemon thread: ends with this test process
        ports.append(port)
    urls = [arg for p in ports for arg in ("--metrics", f"http://127.0.0.1:{p}/metrics")]
    done = run_cli("profile", "compare", *urls, env=env_without_recstream(), timeout=60)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("for_you"))
    assert row.split() == ["for_you", "2", "0.400", "-0.200"]
    dead = run_cli(
        "profile", "compare", "--metrics", f"http://127.0.0.1:{free_port()}/metrics",
        env=env_without_recstream(), timeout=60,
    )  # fmt: skip
    assert dead.returncode == 1 and "cannot read metrics" in dead.stderr
    nowhere = run_cli("profile", "compare", env=env_without_recstream(), timeout=60)
    assert nowhere.returncode == 2 and "--metrics" in nowhere.stderr
