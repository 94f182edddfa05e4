"""The compiled ranking kernels' warm-ups, in one list: what a worker runs before it serves.

A kernel's first call loads it from numba's on-disk cache (~0.3 s for all of them), or
compiles it (~32 s for all of them here, alone; ~35 s inside a first ``make demo``'s start-up,
beside the broker and the lookup build). ``make install`` compiles them once
(``python -m stream.domain.kernels``); a worker loads them at start (``lifecycle``), not in its
first user's ranking; the bench's in-process runner pays it the same way before it times a
burst (``stream.bench.inprocess.build_engine``): a kernel missing from this list would show
there as a first burst ~0.4 s slow, as all of them did in a quick report's in-process burst
before the runner called these (its only window was the timed one).
"""

from __future__ import annotations

from collections.abc import Callable

from stream.domain import (
    affinity,
    candidate_kernels,
    dense,
    diversity_kernel,
    relation_kernels,
    row_top_k,
    top_kernels,
    trending,
)

#: each returns the seconds it took; ``dense`` is the Qdrant points' user vector
WARM_UPS: tuple[Callable[[], float], ...] = (
    relation_kernels.warm_up,
    top_kernels.warm_up,
    diversity_kernel.warm_up,
    candidate_kernels.warm_up,
    affinity.warm_up,
    trending.warm_up,
    dense.warm_up,
    row_top_k.warm_up,  # (not ranking's: catalog updates', in their thread, after the start)
)


def warm_up_all() -> float:
    """Every kernel loaded (or compiled); the seconds it took."""
    return sum(warm() for warm in WARM_UPS)


if __name__ == "__main__":  # `make install`: compiled once into the cache, not at a start
    print(f"kernels compiled (or loaded from the cache) in {warm_up_all():.1f} s")
