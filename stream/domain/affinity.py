"""A user's feature affinities, decayed to now, over the features they have any weight for.

Ranking needs two vectors per burst, the session and the long-term affinity, each feature's
weight decayed to now. The profile keeps them as ``feature -> [weight, t]`` tables. Both tables
are read in one compiled pass (``_merged``): names become ids through the catalog's vocabulary
(one C-level ``map``), weights and times are copied into one array, and the kernel decays,
sorts and aligns them. In Python (a loop per entry, then ~8 numpy calls on arrays of ~80
values to sort and scatter) this cost ~30 µs a ranking, mostly interpreter and call overhead.

Exactness: the kernel decays as ``profile.decayed`` does, ``w * exp(-(now - t) / tau)`` with
``math.exp``, which numba calls in the C library, as CPython does: the same float, bit for bit
(checked on millions of inputs). numpy's vectorised ``exp`` would not do: it differs in the
last bit for ~5 % of inputs, which would move scores by 1e-16 and could reorder exact ties.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import chain, repeat

import numba
import numpy as np

from stream.domain.catalog import Catalog
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, ProfileConfig, UserProfile


@numba.njit(cache=True, nogil=True)
def _merged(
    fids: np.ndarray, wt: np.ndarray, n_session: int, now: float, s_tau: float, l_tau: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The session table's entries, then the long-term table's: ``fids`` their feature ids
    (< 1: unknown or PAD, skipped), ``wt`` their weights and times interleaved. Returns the
    ids (sorted, unique) and, aligned with them, each table's decayed weight (0.0 where the
    table has none). A table names a feature once, so an id is at most in both tables."""
    n = fids.size
    values = np.empty(n, dtype=np.float64)
    for k in range(n):
        w = wt[2 * k]
        t = wt[2 * k + 1]
        tau = s_tau if k < n_session else l_tau
        values[k] = w if now <= t else w * math.exp(-(now - t) / tau)
    order = np.argsort(fids)
    ids = np.empty(n, dtype=np.int64)
    session = np.zeros(n, dtype=np.float64)
    long_term = np.zeros(n, dtype=np.float64)
    m = 0
    for j in range(n):
        k = order[j]
        f = fids[k]
        if f < 1:
            continue
        if m == 0 or ids[m - 1] != f:
            ids[m] = f
            m += 1
        if k < n_session:
            session[m - 1] = values[k]
        else:
            long_term[m - 1] = values[k]
    return ids[:m], session[:m], long_term[:m]


@dataclass(frozen=True)
class FeatureWeights:
    """A weight per feature id, kept for the few ids that have one (sorted): reads like the
    dense vocabulary-sized vector it replaced, ``w[fids]`` for an int array of any shape with
    0.0 where an id has no weight (the same floats the dense vector held)."""

    ids: np.ndarray
    values: np.ndarray

    def __getitem__(self, fids: np.ndarray) -> np.ndarray:
        fids = np.asarray(fids)
        if self.ids.size == 0:
            return np.zeros(fids.shape, dtype=np.float64)
        pos = np.minimum(np.searchsorted(self.ids, fids), self.ids.size - 1)
        return np.where(self.ids[pos] == fids, self.values[pos], 0.0)


@dataclass
class Affinity:
    """Session and long-term affinity of the feature ids the user has any affinity for:
    ``ids`` sorted, ``session`` and ``long_term`` aligned with them (0.0 where one horizon has
    none). Sparse, because a ranking must not cost in proportion to the catalog's whole
    feature vocabulary: three dense vectors over it cost ~46 µs a ranking at 4,000 features
    and ~5 ms at 4M. ``dense`` gives the old vector where a signal still needs one."""

    ids: np.ndarray
    session: np.ndarray
    long_term: np.ndarray
    size: int  # the feature vocabulary's size when the affinities were read

    @staticmethod
    def scale(values: np.ndarray) -> float:
        """``max(1, max |values|)``: what the dense vector's ``np.abs(v).max()`` gave (its
        other entries are 0)."""
        if values.size == 0:
            return 1.0
        return max(1.0, float(np.abs(values).max()))

    def combined(self, w_session: float, w_long: float) -> tuple[FeatureWeights, np.ndarray]:
        """``w_session·session + w_long·long_term`` and the liked ids (> 0, sorted)."""
        out = w_session * self.session + w_long * self.long_term
        return FeatureWeights(self.ids, out), self.ids[out > 0]

    def dense(self, values: np.ndarray) -> np.ndarray:
        """``values`` (aligned with ``ids``) as a vector over the whole vocabulary."""
        out = np.zeros(self.size, dtype=np.float64)
        out[self.ids] = values
        return out


def affinity_vectors(
    profile: UserProfile,
    catalog: Catalog,
    now_ms: float,
    cfg: ProfileConfig = DEFAULT_PROFILE_CONFIG,
) -> Affinity:
    """The user's affinities decayed to ``now_ms`` (see ``Affinity``)."""
    session, long_term = profile.session, profile.long_term
    n = len(session) + len(long_term)
    names = chain(session, long_term)
    fids = np.fromiter(map(catalog.vocab.get, names, repeat(-1)), dtype=np.int64, count=n)
    pairs = chain.from_iterable(chain(session.values(), long_term.values()))
    wt = np.fromiter(pairs, dtype=np.float64, count=2 * n)
    ids, s_vals, l_vals = _merged(
        fids, wt, len(session), float(now_ms), float(cfg.session_tau_ms), float(cfg.long_tau_ms)
    )
    return Affinity(ids, s_vals, l_vals, len(catalog.vocab_names))


def warm_up() -> float:
    """Compile (or load from the cache) ``_merged`` with the types ``affinity_vectors`` passes;
    returns the seconds it took. A worker calls it with the other kernels' ``warm_up``, so its
    first ranking does not pay the compile."""
    started = time.perf_counter()
    _merged(np.array([1, 2], dtype=np.int64), np.ones(4), 1, 1.0, 1.0, 1.0)
    return time.perf_counter() - started
