"""Where a burst's time goes, function by function: a cProfile of the in-process hot path.

The stage timings (``inprocess``) stop at the public API, so candidate generation, scoring,
diversity and reasons are one ``rank`` stage. This profile splits it (and everything else) by
function, whatever the engine's internals are called at the time of the run, so a rebuilt
hot path is profiled the same way. Self time is measured under the profiler, which inflates
small functions; read the shares, not the absolute µs.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream.bench.inprocess import BurstRunner, Raw


def _label(key: tuple[str, int, str]) -> str:
    file, line, name = key
    if file == "~":  # a builtin / C function
        return name
    parts = Path(file).parts
    where = "/".join(parts[parts.index("stream") :]) if "stream" in parts else parts[-1]
    return f"{where}:{line}({name})"


def profile_bursts(
    runner: BurstRunner, bursts: Sequence[Sequence[Raw]], top: int = 15
) -> dict[str, Any]:
    """The ``top`` functions by self time over ``bursts`` (run again on the warm runner)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for burst in bursts:
        runner.run(burst)
    profiler.disable()
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in raw.values()) or 1.0
    ranked = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    return {
        "bursts": len(bursts),
        "functions": [
            {
                "function": _label(key),
                "self_share": round(row[2] / total, 4),
                "cumulative_share": round(row[3] / total, 4),
                "calls_per_burst": round(row[1] / max(1, len(bursts)), 2),
            }
            for key, row in ranked
        ],
    }
