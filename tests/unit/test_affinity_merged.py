"""``affinity_vectors`` against the per-entry Python loop it replaced: the same ids and the same
floats bit for bit (``math.exp`` in the C library either way), unknown names skipped."""

from __future__ import annotations

import math
import random

import numpy as np

from stream.domain.affinity import affinity_vectors
from stream.domain.catalog import Catalog
from stream.domain.profile import DEFAULT_PROFILE_CONFIG, UserProfile


def _reference(profile: UserProfile, vocab: dict[str, int], now: float) -> dict[str, np.ndarray]:
    cfg = DEFAULT_PROFILE_CONFIG
    tables = ((profile.session, cfg.session_tau_ms), (profile.long_term, cfg.long_tau_ms))
    per_table: list[dict[int, float]] = []
    for table, tau in tables:
        out = {}
        for name, (w, t) in table.items():
            fid = vocab.get(name)
            if fid is not None and fid != 0:
                out[fid] = w if now <= t else w * math.exp(-(now - t) / tau)
        per_table.append(out)
    ids = sorted(set(per_table[0]) | set(per_table[1]))
    return {
        "ids": np.array(ids, dtype=np.int64),
        "session": np.array([per_table[0].get(i, 0.0) for i in ids], dtype=np.float64),
        "long_term": np.array([per_table[1].get(i, 0.0) for i in ids], dtype=np.float64),
    }


def test_affinity_vectors_match_the_python_loop() -> None:
    rng = random.Random(7)
    catalog = Catalog()
    names = [f"f{i}" for i in range(400)]
    for name in names:
        catalog.vocab[name] = len(catalog.vocab_names)
        catalog.vocab_names.append(name)
    now = 1_767_000_000_000.0
    for case in range(200):
        profile = UserProfile(user_id="u")
        for table, n in ((profile.session, rng.randint(0, 60)), (profile.long_term, case)):
            for name in rng.sample([*names, "unknown", "also-unknown", ""], min(n, 400)):
                w = rng.choice([1, rng.random() * 5])  # JSON gives ints too
                table[name] = [w, now - rng.choice([0, 1, rng.random() * 1e10, -5e3])]
        for at in (now, now - 1e4, now + 1e9):
            got = affinity_vectors(profile, catalog, at)
            want = _reference(profile, catalog.vocab, at)
            for field, value in want.items():
                mine = getattr(got, field)
                assert mine.dtype == value.dtype and mine.tobytes() == value.tobytes(), field
            assert got.size == len(catalog.vocab_names)
