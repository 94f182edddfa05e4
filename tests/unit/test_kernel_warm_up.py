"""A worker's warm-up compiles every kernel for the argument types ranking then passes: a
kernel first met with other types (an int32 array where warm-up passed int64) would compile
during a live user's ranking, seconds of a stalled event loop after an install. Run in a fresh
process, so kernels other tests compiled in this one do not hide a gap."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import collections
import numba
from stream.domain import affinity, reasons, scored_set, top_lists, trending
from stream.domain import candidate_kernels, diversity_kernel, relation_kernels, top_kernels
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.ranking import FEEDS, RankingProfile

calls = collections.Counter()
KERNELS = (
    candidate_kernels, diversity_kernel, relation_kernels, top_kernels, trending, affinity
)

def counted(module, name):
    kernel = getattr(module, name)
    def call(*args):
        calls[name] += 1
        return kernel(*args)
    setattr(module, name, call)

counted(scored_set, "seen_last")  # (``capped_top`` inside it, compiled with it)
counted(reasons, "liked_order")
counted(trending, "_merged_hot")  # (``merge_top`` inside it, compiled with it)
counted(trending, "_relative")
counted(top_lists, "popular_tops")
counted(top_lists, "rebuild_row")
counted(candidate_kernels, "candidate_block_kernel")
counted(affinity, "_merged")

def compiled():
    out = {}
    for module in KERNELS:
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                out[f"{module.__name__}.{name}"] = set(obj.signatures)
    return out

for module in KERNELS:
    module.warm_up()
before = compiled()
catalog = Catalog(capacity=16)
for i in range(12):
    attributes = {"category": [f"c{i % 3}"], "brand": f"b{i % 2}"}
    catalog.upsert({"item_id": f"i{i}", "attributes": attributes})
engine = Engine(catalog=catalog, ranking=RankingProfile(), feeds=FEEDS)
state = None
for step in range(12):  # rankings after interactions: the top lists merge grown items
    events = [UserEvent("clicks", f"e{step}", "u", 1_000 * (step + 1), (f"i{step % 12}",), (1,))]
    state = engine.step(state, "u", events).state
after = compiled()
extra = {k: sorted(map(str, after[k] - before[k])) for k in after if after[k] - before[k]}
print("calls", dict(calls))
assert not extra, extra
"""


def test_a_ranking_after_warm_up_compiles_nothing_new() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # the kernels ranking reaches were reached (else the comparison says nothing)
    kernels = (
        "seen_last",
        "liked_order",
        "_merged_hot",
        "_relative",
        "popular_tops",
        "rebuild_row",
        "candidate_block_kernel",
        "_merged",
    )
    for kernel in kernels:
        assert f"'{kernel}'" in done.stdout, done.stdout
