"""Dense user representation for the Qdrant `users` point: a signed feature-hashing sketch.

Until the ONNX item encoder exists, the user's vector is a 64-d count-sketch of the sparse
affinity profile (stable hashing, L2-normalised): users with similar affinities get similar
vectors, so a nearest-neighbour query over `users` is already meaningful.
"""

from __future__ import annotations

import zlib

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
