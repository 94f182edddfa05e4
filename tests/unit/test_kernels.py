"""The kernels' warm-ups: every compiled kernel a ranking calls is loaded before the first one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from stream.domain import kernels

DOMAIN = Path(__file__).resolve().parents[2] / "stream" / "domain"


def test_every_domain_module_with_a_warm_up_is_in_the_list() -> None:
    modules = {
        p.stem for p in DOMAIN.glob("*.py") if re.search(r"^def warm_up\(", p.read_text(), re.M)
    }
    listed = {warm.__module__.rsplit(".", 1)[-1] for warm in kernels.WARM_UPS}
    assert modules == listed


#: run in a fresh interpreter: a kernel another test already called in this process would be
#: loaded, and a missing warm-up would not show
_PROBE = """
import json, sys
import numba.core.dispatcher as dispatcher
from stream.domain import kernels
if sys.argv[1] == "warm":
    kernels.warm_up_all()
compiled = []
original = dispatcher.Dispatcher._compile_for_args
def spy(self, *args, **kwargs):
    compiled.append(self.py_func.__qualname__)
    return original(self, *args, **kwargs)
dispatcher.Dispatcher._compile_for_args = spy
from stream.bench.inprocess import BurstRunner, burst_windows, encode
from stream.domain.engine import Engine
from stream.bench.workload import WorkloadConfig, generate_events, load_catalog
cfg = WorkloadConfig(items=400, users=60, seed=3)
catalog = load_catalog(cfg)
engine = Engine()  # (not build_engine: it warms the kernels itself)
for message in catalog:
    engine.catalog.upsert(message)
runner = BurstRunner(engine)
for window in burst_windows(encode(generate_events(catalog, cfg, 600)), 16):
    runner.run_window(window, reasons_probe=True)
print(json.dumps(compiled))
"""


def _compiled_by_bursts(warm: bool) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "warm" if warm else "cold"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_after_the_warm_ups_bursts_compile_nothing() -> None:
    """What the worker relies on: its first user's ranking loads no kernel (a cache load
    costs ~0.4 s, a compile seconds). Bursts of the bench's workload, every feed, reasons;
    without the warm-ups the same bursts load kernels (the probe sees them)."""
    assert _compiled_by_bursts(warm=True) == []
    assert len(_compiled_by_bursts(warm=False)) >= len(kernels.WARM_UPS)
