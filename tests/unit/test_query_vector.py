"""``query_vector``'s compiled mean against the numpy code it replaced (kept here as reference)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from stream.domain.dense import query_vector
from stream.domain.profile import UserProfile

DAY_MS = 24 * 3600 * 1000.0


def reference(
    profile: UserProfile, index: dict[str, int], embeddings: np.ndarray, now_ms: float
) -> np.ndarray | None:
    """The numpy version as it was before the kernel (verbatim but for the names)."""
    rows, roles, ages = [], [], []
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
    embedded = np.abs(vectors).sum(axis=1) > 0
    if not embedded.any():
        return None
    age = np.asarray(ages)
    w = np.exp(-(age - age[embedded].min()) / DAY_MS) * embedded
    mean = w @ vectors / w.sum()
    norm = float(np.linalg.norm(mean))
    return None if norm < 1e-12 or not math.isfinite(norm) else mean / norm


def profile_of(queries: list[tuple[str, str, float]]) -> UserProfile:
    profile = UserProfile("u")
    profile.queries = [[i, role, ts] for i, role, ts in queries]
    return profile


@pytest.mark.parametrize("seed", range(40))
def test_kernel_matches_numpy_on_random_query_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items, dim, now = 50, 16, 1.7e12
    emb = rng.normal(size=(3, items, dim)).astype(np.float32)
    emb[:, rng.choice(items, 8, replace=False)] = 0.0  # items not embedded yet
    index = {f"i{k}": k for k in range(items - 5)}  # 5 ids unknown to the index
    n = int(rng.integers(1, 100))
    queries = [
        (
            f"i{int(rng.integers(0, items))}",
            "buy" if rng.random() < 0.3 else "view",
            now - float(rng.exponential(3 * DAY_MS)) + (5e3 if rng.random() < 0.1 else 0.0),
        )
        for _ in range(n)
    ]
    profile = profile_of(queries)
    want, got = reference(profile, index, emb, now), query_vector(profile, index, emb, now)
    if want is None:
        assert got is None
    else:
        assert got is not None and np.allclose(got, want, rtol=1e-9, atol=1e-12)
        assert float(np.linalg.norm(got)) == pytest.approx(1.0)


def test_none_when_no_query_is_embedded_known_or_finite() -> None:
    emb = np.zeros((3, 4, 8), dtype=np.float32)
    index = {"a": 0, "b": 1, "far": 9}
    assert query_vector(profile_of([]), index, emb, 0.0) is None
    assert query_vector(profile_of([("zzz", "view", 0.0)]), index, emb, 0.0) is None
    assert query_vector(profile_of([("far", "view", 0.0)]), index, emb, 0.0) is None
    assert query_vector(profile_of([("a", "buy", 0.0)]), index, emb, 0.0) is None
    emb[0, 1, 0] = np.nan  # a NaN row is left out, like an unembedded one
    assert query_vector(profile_of([("b", "view", 0.0)]), index, emb, 0.0) is None
    emb[0, 0, 3] = 2.0
    got = query_vector(profile_of([("a", "view", 0.0), ("b", "view", 0.0)]), index, emb, 0.0)
    assert got is not None and got.tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_a_history_from_years_back_does_not_underflow() -> None:
    emb = np.ones((3, 2, 4), dtype=np.float32)
    emb[1, 1] = [1.0, -1.0, 1.0, -1.0]
    years = 10 * 365 * DAY_MS
    profile = profile_of([("a", "view", 0.0), ("b", "buy", -DAY_MS)])
    got = query_vector(profile, {"a": 0, "b": 1}, emb, years)
    want = reference(profile, {"a": 0, "b": 1}, emb, years)
    assert got is not None and want is not None and np.allclose(got, want)


WARM_SCRIPT = r"""
import numpy as np
from stream.domain import dense
from stream.domain.profile import UserProfile
dense.warm_up()
before = set(dense._query_mean.signatures)
profile = UserProfile("u")
profile.queries = [["a", "view", 0.0], ["b", "buy", 5.0]]
for writable in (True, False):
    emb = np.random.default_rng(0).normal(size=(3, 2, 8)).astype(np.float32)
    emb.setflags(write=writable)
    assert dense.query_vector(profile, {"a": 0, "b": 1}, emb, 10.0) is not None
print("new", set(dense._query_mean.signatures) - before)
"""


def test_warm_up_compiles_what_the_user_vector_then_calls() -> None:
    """In a fresh process: other tests' compiles would hide a signature warm-up missed."""
    done = subprocess.run(
        [sys.executable, "-c", WARM_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "new set()" in done.stdout, done.stdout
