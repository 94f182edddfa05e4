"""The lookup's buffers: what a write of rows holds, and how a buffer takes more items.

Apart from ``stream.domain.lookup`` because a staged update (``lookup_patch``) journals the
same writes that lookup makes in place.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: what a buffer holds where no item is (by the buffer name's first part; others 0)
FILLS = {"rows": -1, "sims": -np.inf, "near": -np.inf, "active": False, "label": -1}


class Row(NamedTuple):
    """What a store writes for a block of rows: each row buffer's part."""

    targets: np.ndarray
    sims: np.ndarray
    strengths: np.ndarray
    lengths: np.ndarray


def resized(name: str, buf: np.ndarray, capacity: int, n: int) -> np.ndarray:
    """Buffer ``name`` holding ``buf``'s first ``n`` items, with room for ``capacity``."""
    axis = 1 if name == "embeddings" else 0
    shape = list(buf.shape)
    shape[axis] = capacity
    out = np.empty(shape, dtype=buf.dtype)  # (each byte written once: a copy is ~GBs)
    cut = (slice(None),) * axis + (slice(0, n),)
    out[cut] = buf[cut]
    out[(slice(None),) * axis + (slice(n, None),)] = FILLS.get(name.split("_")[0], 0)
    return out
