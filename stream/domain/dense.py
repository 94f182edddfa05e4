"""Dense user representation for the Qdrant `users` point: a signed feature-hashing sketch.

Without the Pfeed lookup (``RECSTREAM_PFEED=0``, or before it is loaded), the user's vector is
a 64-d count-sketch of the sparse affinity profile (stable hashing, L2-normalised): users with
similar affinities get similar vectors, so a nearest-neighbour query over `users` is already
meaningful. With it, the vector
is ``query_vector``: the recency-weighted mean of the user's query embeddings.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping

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
    rows: list[int] = []
    roles: list[int] = []
    ages: list[float] = []
    for item_id, role, ts in profile.queries:
        idx = index.get(item_id)
        if idx is None or idx >= embeddings.shape[1]:
            continue
        rows.append(idx)
        roles.append(1 if role == "buy" else 0)
        ages.append(max(0.0, now_ms - float(ts)))
    if not rows:
        return None
    vectors = embeddings[np.asarray(roles), np.asarray(rows)].astype(np.float64)
    # relative to the newest query, so a history replayed from years back does not underflow
    embedded = np.abs(vectors).sum(axis=1) > 0  # an item not embedded yet has a zero row
    if not embedded.any():
        return None
    age = np.asarray(ages)
    w = np.exp(-(age - age[embedded].min()) / tau_ms) * embedded
    mean = w @ vectors / w.sum()
    norm = float(np.linalg.norm(mean))
    return None if norm < 1e-12 or not math.isfinite(norm) else mean / norm
