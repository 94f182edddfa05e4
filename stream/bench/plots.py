"""PNG figures of a bench report (matplotlib, Agg backend): what a person would rather see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

_RUNS = (
    ("bare_consumer", "bare aiokafka\nconsumer"),
    ("noop_faust", "Faust no-op\nagent"),
    ("naive_faust", "naive Faust\n(table+send)"),
    ("pipeline", "pipeline\n1 worker"),
    ("two_workers", "pipeline\n2 workers"),
)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def throughput(report: dict[str, Any], path: Path) -> Path:
    names = [label for key, label in _RUNS if f"{key}_eps" in report]
    values = [report[f"{key}_eps"] for key, _ in _RUNS if f"{key}_eps" in report]
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.bar(names, values, color=["#999", "#999", "#999", "#2a7", "#2a7"][: len(values)])
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{value:,.0f}",
            (bar.get_x() + bar.get_width() / 2, value),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_yscale("log")
    ax.set_ylabel("events/s (log)")
    rounds = len(report.get("throughput_rounds") or [])
    medians = f"; pipeline and naive Faust: medians of {rounds} rounds" if rounds > 1 else ""
    ax.set_title(f"Sustained throughput, same backlog{medians}")
    return _save(fig, path)


def drains(report: dict[str, Any], path: Path) -> Path:
    """Events done vs time for the pipeline drains: a straight line = a sustained rate."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for name in ("pipeline", "two_workers"):
        series = report["throughput_runs"].get(name, {}).get("series") or []
        if series:
            ax.plot([t for t, _ in series], [n for _, n in series], label=name.replace("_", " "))
    ax.set_xlabel("seconds since the first processed event")
    ax.set_ylabel("user events processed")
    ax.set_title("Pipeline drains of the pre-filled backlog (from /metrics)")
    ax.legend()
    return _save(fig, path)


def latency(report: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, style in (("pipeline", "-"), ("floor", "--"), ("faust_floor", ":")):
        rows = [r for r in report["latency"].get(name, []) if r.get("events")]
        loads = [int(r["load"] * 100) for r in rows]
        for q, colour in (("p50", "#2a7"), ("p95", "#e90"), ("p99", "#c33")):
            ax.plot(
                loads, [r[q] for r in rows], style, marker="o", color=colour, label=f"{name} {q}"
            )
    probes = (report["latency"].get("capacity") or {}).get("probes", [])
    probes = [p for p in probes if p.get("events")]
    if probes:  # the steady-capacity search's paced probes (their p99) and its bound
        ax.plot(
            [p["load"] * 100 for p in probes], [p["p99"] for p in probes], "x", color="#c33",
            markersize=9, label="capacity probe p99",
        )  # fmt: skip
        ax.axhline(report["latency"]["capacity"]["p99_bound_ms"], color="#888", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("load, % of the measured max rate")
    ax.set_ylabel("event → list consumed, ms (log)")
    ax.set_title("End-to-end latency vs the broker floor (relay) and the worker path floor")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def stages(report: dict[str, Any], path: Path) -> Path:
    burst = report["burst"]
    names = list(burst["stages_us"])
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [burst["stages_us"][n]["p50"] for n in names], 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [burst["stages_us"][n]["p99"] for n in names], 0.4, label="p99")
    ax.set_xticks(list(xs), names)
    ax.set_yscale("log")
    ax.set_ylabel("µs per user burst (log)")
    ax.set_title(
        f"In-worker time per burst: p50 {burst['total_us']['p50']:.0f} µs, "
        f"p99 {burst['total_us']['p99']:.0f} µs ({burst['events_per_burst']} events/burst)"
    )
    ax.legend()
    return _save(fig, path)


def scaling(report: dict[str, Any], path: Path) -> Path:
    sc = report["scaling"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, rows, label in (
        (left, "candidates", sc["candidates"], "candidates scored"),
        (right, "query_items", sc["queries"], "query items used"),
    ):
        xs = [r[key] for r in rows]
        ax.plot(xs, [r["p50"] for r in rows], marker="o", label="p50")
        ax.plot(xs, [r["p99"] for r in rows], marker="o", label="p99")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("µs per event (in-process)")
        ax.legend()
    fig.suptitle("Per-event cost, heavy user at default bounds")
    return _save(fig, path)


def state(report: dict[str, Any], path: Path) -> Path:
    rows = report["state"]["rss"]
    users = [r["users"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(users, [r["rss_mb_after_serving"] for r in rows], marker="o", label="RSS after serving")
    ax.plot(users, [r["rss_mb_before_fill"] for r in rows], marker=".", label="RSS before fill")
    ax.plot(
        users, [r["disk_mb"] for r in rows], marker="s", linestyle="--", label="RocksDB on disk"
    )
    ax.set_xscale("log")
    ax.set_xlabel("users in state")
    ax.set_ylabel("MB")
    ax.set_title("Process RSS vs users in a RocksDB state store")
    ax.legend()
    return _save(fig, path)


def write_all(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Every figure whose section is present in the report."""
    done = []
    if "pipeline_eps" in report:
        done.append(throughput(report, out_dir / "throughput.png"))
        done.append(drains(report, out_dir / "drains.png"))
    if "latency" in report:
        done.append(latency(report, out_dir / "latency.png"))
    if "burst" in report:
        done.append(stages(report, out_dir / "burst_stages.png"))
    if "scaling" in report:
        done.append(scaling(report, out_dir / "scaling.png"))
    if report.get("state", {}).get("rss"):
        done.append(state(report, out_dir / "state_rss.png"))
    return done
