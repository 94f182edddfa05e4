"""Load levels: the events a paced load generator sends at one rate, one file per level.

Each level draws its own part of the seeded workload (``generate_events(part=...)``), so no two
levels replay the same sessions: the latency levels parts 1-3, the warm-up part 4, the capacity
probes from ``stream.bench.capacity.FIRST_PART``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.bench.capacity import CapacitySearch
from stream.bench.loadgen import write_jsonl
from stream.bench.workload import WorkloadConfig, generate_events

LOADS = (0.25, 0.5, 0.75)
#: the warm-up level (at the lowest level's rate)
WARMUP_LEVEL_S = 2.0


@dataclass
class Level:
    share: float
    rate: float
    events: Path
    count: int


def prepare_levels(
    run_dir: Path,
    catalog: list[dict[str, Any]],
    cfg: WorkloadConfig,
    max_eps: float,
    seconds: float,
) -> list[Level]:
    """One event file per load level (independent parts of the workload)."""
    levels = []
    for part, share in enumerate(LOADS, start=1):
        rate = max(1.0, max_eps * share)
        path = run_dir / f"latency-{int(share * 100)}.jsonl"
        count = write_jsonl(
            path, generate_events(catalog, cfg, max(20, int(rate * seconds)), part=part)
        )
        levels.append(Level(share, rate, path, count))
    return levels


def warmup_level(
    run_dir: Path, catalog: list[dict[str, Any]], cfg: WorkloadConfig, first: Level
) -> Level:
    """``WARMUP_LEVEL_S`` at the first level's rate, from a workload part no level uses."""
    path = run_dir / "latency-warmup.jsonl"
    wanted = max(20, int(first.rate * WARMUP_LEVEL_S))
    count = write_jsonl(path, generate_events(catalog, cfg, wanted, part=len(LOADS) + 1))
    return Level(0.0, first.rate, path, count)


def probe_level(
    run_dir: Path,
    catalog: list[dict[str, Any]],
    cfg: WorkloadConfig,
    share: float,
    rate: float,
    plan: CapacitySearch,
    part: int,
) -> Level:
    """A capacity probe's events: ``plan.seconds`` at ``rate``, from workload part ``part``."""
    path = run_dir / f"capacity-{part}.jsonl"
    wanted = max(20, int(rate * plan.seconds))
    count = write_jsonl(path, generate_events(catalog, cfg, wanted, part=part))
    return Level(max(share, 0.001), rate, path, count)
