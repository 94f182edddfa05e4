"""A user's feature affinities as dense vectors over the catalog's feature vocabulary.

Ranking needs two vectors per burst, the session and the long-term affinity, each feature's
weight decayed to now. The profile keeps them as ``feature -> [weight, t]`` tables; reading
them through ``UserProfile.affinities`` twice (once per horizon, each pass over both tables)
and mapping names to ids afterwards cost four passes. This is one pass per table with the
same arithmetic (``math.exp``, as ``profile.decayed``), so the vectors are bit-for-bit the
old ones: numpy's vectorised ``exp`` differs from ``math.exp`` in the last bit for ~5 % of
inputs, which would move scores by 1e-16 and could reorder exact ties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stream.domain.catalog import PAD, Catalog
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, ProfileConfig, UserProfile
from stream.domain.sorted_sets import sorted_unique


def _decayed_into(
    out: np.ndarray, table: dict[str, list[float]], vocab: dict[str, int], now: float, tau: float
) -> list[int]:
    exp = math.exp
    touched = []
    values = []
    for name, (w, t) in table.items():
        fid = vocab.get(name)
        if fid is not None and fid != PAD:
            values.append(w if now <= t else w * exp(-(now - t) / tau))
            touched.append(fid)
    out[touched] = values  # one assignment, not a numpy scalar write per feature
    return touched


@dataclass
class Affinity:
    """Session and long-term affinity per feature id (dense, 0 where absent) and the feature
    ids the user has any affinity for (sorted): vocabulary-wide reductions (the scale of each
    vector, what the user likes) run over those few ids, not over the whole vocabulary."""

    session: np.ndarray
    long_term: np.ndarray
    touched: np.ndarray

    def scale(self, dense: np.ndarray) -> float:
        """``max(1, max |dense|)``, as ``np.abs(dense).max()`` would give it."""
        if self.touched.size == 0:
            return 1.0
        return max(1.0, float(np.abs(dense[self.touched]).max()))

    def combined(self, w_session: float, w_long: float) -> tuple[np.ndarray, np.ndarray]:
        """``w_session·session + w_long·long_term`` (dense) and the liked ids (> 0, sorted)."""
        out = np.zeros(self.session.size, dtype=np.float64)
        t = self.touched
        out[t] = w_session * self.session[t] + w_long * self.long_term[t]
        return out, t[out[t] > 0]


def affinity_vectors(
    profile: UserProfile,
    catalog: Catalog,
    now_ms: float,
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
) -> Affinity:
    """The user's affinities decayed to ``now_ms`` (see ``Affinity``)."""
    n = len(catalog.vocab_names)
    session = np.zeros(n, dtype=np.float64)
    long_term = np.zeros(n, dtype=np.float64)
    vocab = catalog.vocab
    touched = _decayed_into(session, profile.session, vocab, now_ms, cfg.session_tau_ms)
    touched += _decayed_into(long_term, profile.long_term, vocab, now_ms, cfg.long_tau_ms)
    return Affinity(session, long_term, sorted_unique(np.asarray(touched, dtype=np.int64)))
