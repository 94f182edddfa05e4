"""`recstream bench --quick` on tiny sizes, as a user runs it: the harness keeps working.

No timing assertions (benchmarks are not tests): only that every figure exists and is positive,
the JSON has the keys other tools read, the markdown and plots are written, and no process the
benchmark started outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.bench.capacity import within

pytestmark = pytest.mark.e2e

TINY = [
    "--quick",
    "--events", "300",
    "--users", "60",
    "--items", "600",
    "--latency-seconds", "1.5",
    "--state-sizes", "200,500",
    "--repeats", "5",
]  # fmt: skip


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSTREAM_")}
    env["RECSTREAM_DATA_DIR"] = str(tmp_path / "data")
    env["TMPDIR"] = str(tmp_path)  # the run folder, and so every child's data dir, lives here
    return env


def _survivors(tmp_path: Path) -> list[int]:
    """PIDs (other than ours) whose environment points into this test's folder."""
    mark = str(tmp_path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, int | float) and value > 0, f"{where} = {value!r}"


def test_bench_quick_writes_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = ["bench", *TINY, "--out", str(out), "--json", str(out / "bench.json")]
    argv += ["--capacity-probes", "1"]  # (--quick has none; one keeps the search working)
    argv += ["--rounds", "2"]  # (--quick runs one; two keep the rounds working)
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", *argv],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    for phase in ("[workload]", "[in-process]", "[state]", "[broker]", "[throughput]", "[latency]"):
        assert phase in done.stderr, phase
    r = orjson.loads((out / "bench.json").read_bytes())
    for key in ("pipeline", "two_workers", "noop_faust", "naive_faust", "bare_consumer"):
        _positive(r[f"{key}_eps"], f"{key}_eps")
    for q in ("p50", "p95", "p99"):
        _positive(r["latency_ms"][q], f"latency_ms.{q}")
        _positive(r["floor_latency_ms"][q], f"floor_latency_ms.{q}")
    assert r["ratios"] and all(v > 0 for v in r["ratios"].values()), r["ratios"]
    assert len(r["throughput_rounds"]) == 2  # the pipeline and naive Faust drained twice
    for one in r["throughput_rounds"]:
        for key in ("pipeline_eps", "naive_faust_eps", "ratio"):
            _positive(one[key], f"round {key}")
    assert r["pipeline_eps"] == pytest.approx(
        sum(one["pipeline_eps"] for one in r["throughput_rounds"]) / 2, abs=0.1
    )  # the median of two rounds
    for q in ("p50", "p95", "p99"):  # the worker's Faust path with no engine, at 50 %
        _positive(r["faust_floor_latency_ms"][q], f"faust_floor_latency_ms.{q}")
    expected = {"pipeline": [0.25, 0.5, 0.75], "floor": [0.25, 0.5, 0.75], "faust_floor": [0.5]}
    for name, loads in expected.items():
        assert [row["load"] for row in r["latency"][name]] == loads
        for row in r["latency"][name]:
            _positive(row["rate_eps"], f"{name} rate")
            _positive(row["events"], f"{name} events at {row['load']}")
            for q in ("p50", "p95", "p99", "max"):
                _positive(row[q], f"{name} {q} at {row['load']}")
            # what the level cost: the worker's (relay's) CPU per event, the broker's cores
            _positive(row["sut_cpu_ms_per_event"], f"{name} CPU at {row['load']}")
            _positive(row["broker_cores"], f"{name} broker CPU at {row['load']}")
    for row in r["latency"]["pipeline"]:  # the worker's own view: total, and delivery within it
        _positive(row["worker_delivery_ms"], f"delivery at {row['load']}")
    capacity = r["latency"]["capacity"]  # one rate probed below the levels that failed
    probes = capacity["probes"]
    assert capacity["p99_bound_ms"] == 100.0 and len(probes) in (1, 2)
    if len(probes) == 2:  # beyond the bound: probed again at the same rate, and reported so
        assert not within(probes[0], 100.0) and probes[1].get("confirms")
        assert probes[1]["rate_eps"] == probes[0]["rate_eps"]
    probe = probes[-1]
    _positive(probe["rate_eps"], "capacity probe rate")
    # within the bound it is the capacity, beyond it the slowest rate beyond
    assert probe["rate_eps"] in (capacity["eps"], capacity["first_beyond_eps"])
    assert r["steady_capacity_eps"] == capacity["eps"]
    burst = r["burst"]
    _positive(burst["total_us"]["p50"], "burst p50")
    _positive(burst["total_us"]["p99"], "burst p99")
    assert set(burst["stages_us"]) >= {"decode", "state_read", "apply", "rank", "serialise"}
    for stage, q in burst["stages_us"].items():
        _positive(q["p50"], f"stage {stage}")
    for key in ("rank_warm_us", "rank_without_reasons_us"):
        _positive(burst[key]["mean"], key)
    assert set(burst["rank_split_us"]) == {"refresh", "reasons"}
    _positive(burst["steady"]["cpu_us_per_event"], "steady CPU an event")
    assert r["hotspots"]["functions"], "no profile of the hot path"
    for f in r["hotspots"]["functions"]:
        _positive(f["self_share"], f["function"])
    assert len(r["scaling"]["candidates"]) >= 5 and len(r["scaling"]["queries"]) >= 5
    for row in r["scaling"]["candidates"] + r["scaling"]["queries"]:
        _positive(row["p50"], f"scaling {row}")
    state = r["state"]
    _positive(state["bytes_per_user"]["mean"], "bytes per user")
    _positive(state["heavy_profile_bytes"], "heavy profile bytes")
    assert [x["users"] for x in state["rss"]] == [200, 500]
    for x in state["rss"]:
        _positive(x["rss_mb_after_serving"], "rss")
        _positive(x["disk_mb"], "disk")
        for key in ("index_rebuild_us_per_user", "full_decode_us_per_user"):
            _positive(x[key], key)
    assert r["header"]["commit"] and r["header"]["machine"]["cpus"]
    assert r["workload"]["mix"].get("clicks") and r["workload"]["mix"].get("orders")
    md = (out / "bench.md").read_text()
    assert "pipeline" in md and "floor" in md and "faust_floor" in md
    assert "Steady capacity of one worker" in md
    assert "drained the backlog in 2 rounds" in md
    for png in ("throughput", "drains", "latency", "burst_stages", "scaling", "state_rss"):
        assert (out / f"{png}.png").stat().st_size > 1000, png
    assert _survivors(tmp_path) == []


def test_bench_stops_its_processes_on_sigterm(tmp_path: Path) -> None:
    argv = ["bench", *TINY, "--out", str(tmp_path / "report")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", *argv],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until a worker process is running
            if line.startswith("[throughput] pipeline: draining"):
                break
        time.sleep(2.0)
        assert _survivors(tmp_path), "expected the broker and a worker to be running"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=90)  # keeps reading stderr, so the child never blocks on it
        code = proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    deadline = time.monotonic() + 10
    while _survivors(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _survivors(tmp_path) == []


def test_restart_bench_writes_both_kinds_of_start(tmp_path: Path) -> None:
    """`python -m stream.bench.restart` on a tiny topic: a replayed and a restored start each."""
    out = tmp_path / "restart"
    argv = ["-m", "stream.bench.restart", "--observations", "400", "--pairs", "1"]
    done = subprocess.run(
        [sys.executable, *argv, "--out", str(out)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "[restart] published 400/400 observations" in done.stderr
    r = orjson.loads((out / "restart.json").read_bytes())
    starts = {row["start"].split(" #")[0]: row for row in r["rows"]}
    assert set(starts) == {"first (no snapshot yet)", "full replay", "from snapshot"}
    assert not starts["full replay"]["restored"] and starts["from snapshot"]["restored"]
    assert starts["first (no snapshot yet)"]["snapshot_kb"] > 0  # written at its clean stop
    assert {row["applied"] for row in r["rows"]} == {400}  # restored, never applied twice
    for row in r["rows"]:
        _positive(row["replica_ready_s"], row["start"])
    _positive(r["speedup"], "speedup")
    assert (out / "restart.png").stat().st_size > 1000
    assert "full replay" in (out / "restart.md").read_text()
    assert _survivors(tmp_path) == []
