"""Dense user representation for the Qdrant `users` point: a signed feature-hashing sketch.

Without the Pfeed lookup (``RECSTREAM_PFEED=0``, or before it is loaded), the user's vector is
a 64-d count-sketch of the sparse affinity profile (stable hashing, L2-normalised): users with
similar affinities get similar vectors, so a nearest-neighbour query over `users` is already
meaningful. With it, the vector
is ``query_vector``: the recency-weighted mean of the user's query embeddings.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Mapping
from itertools import repeat

import numba
import numpy as np

from stream.domain.profile import UserProfile

DIM = 64


def user_vector(profile: UserProfile, now_ms: float, dim: int = DIM) -> list[float]:
    """Hash current affinities into ``dim`` slots; never the zero vector (cosine needs a norm)."""
    vec = np.zeros(dim, dtype=np.float64)
    for feature, weight in profile.affinities(now_ms).items():
        h = zlib.crc32(feature.encode())
        vec[h % dim] += weight if (h >> 16) & 1 else -weight
    norm = float(np.linalg.norm(vec))
    if norm < 1e-12:
        vec[0] = 1.0
        norm = 1.0
    return (vec / norm).tolist()


def query_vector(
    profile: UserProfile,
    index: Mapping[str, int],
    embeddings: np.ndarray,
    now_ms: float,
    tau_ms: float = 24 * 3600 * 1000.0,
) -> np.ndarray | None:
    """Pfeed's user vector: the recency-weighted mean of the user's query embeddings (a view
    query by its view-query embedding, a buy query by its buy-query one; ``embeddings`` is the
    encoder's (3, items, dim) array at ``index`` positions), L2-normalised. It lives in the
    space the items' target embeddings are scored in, so a nearest-neighbour search of the
    `items` collection with it returns what the user's queries point at. None when no query has
    an embedding (the caller falls back to the affinity sketch)."""
    queries = profile.queries
    if not queries:
        return None
    # whole columns at a time (a Python loop appending per query: 52 µs for 100 queries, 31
    # now); unknown items are -1, left out by the kernel with those beyond the array
    ids, kinds, stamps = zip(*queries, strict=True)
    rows = np.fromiter(map(index.get, ids, repeat(-1)), dtype=np.int64, count=len(ids))
    roles = np.array([kind == "buy" for kind in kinds], dtype=np.int64)
    ages = np.maximum(now_ms - np.array(stamps, dtype=np.float64), 0.0)
    mean = _query_mean(embeddings, roles, rows, ages, float(tau_ms))
    return mean if mean.size else None


@numba.njit(cache=True, nogil=True)
def _query_mean(
    embeddings: np.ndarray, roles: np.ndarray, rows: np.ndarray, ages: np.ndarray, tau_ms: float
) -> np.ndarray:
    """The weighted, L2-normalised mean of ``embeddings[roles[k], rows[k]]`` in one compiled
    pass (numpy took ~20 us a user in a dozen small calls; it runs for every Qdrant point).
    Rows that are all zero (an item not embedded yet) or hold a NaN are left out; weights decay
    with the age relative to the newest query kept, so a history replayed from years back does
    not underflow. A row outside ``embeddings`` (-1: an item the index does not know) is left
    out too. An empty array where numpy's version returned None."""
    n, items, dim = rows.size, embeddings.shape[1], embeddings.shape[2]
    kept = np.zeros(n, dtype=np.bool_)
    newest = np.inf
    for k in range(n):
        if rows[k] < 0 or rows[k] >= items:
            continue
        total = 0.0
        for d in range(dim):
            total += abs(float(embeddings[roles[k], rows[k], d]))
        if total > 0:
            kept[k] = True
            newest = min(newest, ages[k])
    out = np.zeros(dim, dtype=np.float64)
    if newest == np.inf:
        return out[:0]
    weights = 0.0
    for k in range(n):
        if kept[k]:
            w = math.exp(-(ages[k] - newest) / tau_ms)
            weights += w
            for d in range(dim):
                out[d] += w * float(embeddings[roles[k], rows[k], d])
    norm = 0.0
    for d in range(dim):
        out[d] /= weights
        norm += out[d] * out[d]
    norm = math.sqrt(norm)
    if norm < 1e-12 or not math.isfinite(norm):
        return out[:0]
    return out / norm


def warm_up() -> float:
    """Compile (or load from the cache) ``_query_mean`` for the embeddings a worker holds: a
    lookup built in the worker (writable) and one loaded from a published version (read-only);
    returns the seconds it took, so the first Qdrant flush does not pay it on the event loop."""
    started = time.perf_counter()
    rows = np.zeros(1, dtype=np.int64)
    ages = np.zeros(1, dtype=np.float64)
    for writable in (True, False):
        embeddings = np.ones((3, 1, 4), dtype=np.float32)
        embeddings.setflags(write=writable)
        _query_mean(embeddings, rows, rows, ages, 1.0)
    return time.perf_counter() - started
