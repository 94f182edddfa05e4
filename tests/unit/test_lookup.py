"""The query→target lookup: exact top-K, incremental upsert = rebuild, removal, alignment."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain.lookup import QueryTargetLookup


def unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    x = rng.standard_normal((3, n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=2, keepdims=True)


def brute(emb: np.ndarray, role: int, q: int, k: int, active: np.ndarray) -> list[int]:
    sims = emb[role, q] @ emb[2].T
    sims[q] = -np.inf
    sims[~active] = -np.inf
    order = np.argsort(-sims, kind="stable")
    return [int(i) for i in order[:k] if np.isfinite(sims[i])]


def ids(n: int, start: int = 0) -> list[str]:
    return [f"i{j}" for j in range(start, start + n)]


def assert_same_rows(a: QueryTargetLookup, b: QueryTargetLookup) -> None:
    for idx in range(len(a)):
        for role in ("view", "buy"):
            ta, sa = a.related(idx, role)
            tb, sb = b.related(idx, role)
            assert ta.tolist() == tb.tolist(), (idx, role)
            np.testing.assert_allclose(sa, sb, atol=1e-6)


def test_build_matches_brute_force_in_small_chunks() -> None:
    rng = np.random.default_rng(0)
    emb = unit(rng, 50)
    lookup = QueryTargetLookup(ids(50), emb, k=10).build(chunk=7)
    active = np.ones(50, dtype=bool)
    for q in (0, 13, 49):
        for ri, role in enumerate(("view", "buy")):
            targets, strengths = lookup.related(q, role)
            assert targets.tolist() == brute(emb, ri, q, 10, active)
            assert q not in targets.tolist()
            assert ((strengths >= 0) & (strengths <= 1)).all()
            assert (np.diff(strengths) <= 1e-9).all()


def test_view_and_buy_rows_differ_by_query_embedding() -> None:
    rng = np.random.default_rng(1)
    lookup = QueryTargetLookup(ids(40), unit(rng, 40), k=10).build()
    assert lookup.related(3, "view")[0].tolist() != lookup.related(3, "buy")[0].tolist()


def test_unknown_index_reads_empty() -> None:
    lookup = QueryTargetLookup(ids(5), unit(np.random.default_rng(2), 5), k=3).build()
    assert lookup.related(99, "buy")[0].size == 0
    assert lookup.related(0, "view")[0].size == 3  # 4 others, k = 3


@pytest.mark.parametrize("chunk", [3, 1000])
def test_incremental_add_equals_full_rebuild(chunk: int) -> None:
    rng = np.random.default_rng(3)
    emb = unit(rng, 60)
    incremental = QueryTargetLookup(ids(45), emb[:, :45], k=10).build()
    incremental.upsert(ids(10, 45), emb[:, 45:55], chunk=chunk)
    incremental.upsert(ids(5, 55), emb[:, 55:], chunk=chunk)
    full = QueryTargetLookup(ids(60), emb, k=10).build()
    assert_same_rows(incremental, full)


def test_changed_item_leaves_rows_it_no_longer_belongs_to() -> None:
    rng = np.random.default_rng(4)
    emb = unit(rng, 40)
    lookup = QueryTargetLookup(ids(40), emb, k=5).build()
    changed = emb.copy()
    changed[:, 7] = unit(rng, 1)[:, 0]
    lookup.upsert(["i7"], changed[:, 7:8])
    assert_same_rows(lookup, QueryTargetLookup(ids(40), changed, k=5).build())


def test_removed_item_is_no_target_but_keeps_its_rows() -> None:
    rng = np.random.default_rng(5)
    emb = unit(rng, 30)
    lookup = QueryTargetLookup(ids(30), emb, k=5).build()
    holders = [q for q in range(30) if 4 in lookup.related(q, "buy")[0].tolist()]
    assert holders
    lookup.remove(["i4"])
    active = np.ones(30, dtype=bool)
    active[4] = False
    for q in holders:
        assert lookup.related(q, "buy")[0].tolist() == brute(emb, 1, q, 5, active)
    assert lookup.related(4, "buy")[0].size == 5


def test_aligned_to_a_catalog_order() -> None:
    rng = np.random.default_rng(6)
    emb = unit(rng, 20)
    lookup = QueryTargetLookup(ids(20), emb, k=5).build()
    catalog = ["new", *reversed(ids(20))]
    aligned = lookup.aligned_to(catalog)
    assert aligned.related(0, "buy")[0].size == 0  # unknown item: empty until upserted
    for old in (0, 9, 19):
        new = catalog.index(f"i{old}")
        expect = [catalog.index(lookup.ids[t]) for t in lookup.related(old, "view")[0]]
        assert aligned.related(new, "view")[0].tolist() == expect
    aligned.upsert(["new"], unit(rng, 1))
    assert aligned.related(0, "buy")[0].size == 5


def test_large_catalog_takes_the_sampled_threshold_path_and_stays_exact() -> None:
    rng = np.random.default_rng(7)
    emb = unit(rng, 1500, d=16)
    lookup = QueryTargetLookup(ids(1500), emb, k=12).build(chunk=100)  # 1500 >= 64 * 12
    lookup.remove(["i10"])
    active = np.ones(1500, dtype=bool)
    active[10] = False
    for q in (0, 10, 777, 1499):
        for ri, role in enumerate(("view", "buy")):
            assert lookup.related(q, role)[0].tolist() == brute(emb, ri, q, 12, active)


def test_a_hub_is_cut_out_of_its_rows_past_the_recompute_limit() -> None:
    rng = np.random.default_rng(8)
    emb = unit(rng, 40)
    lookup = QueryTargetLookup(ids(40), emb, k=5).build()
    lookup.max_recompute = 0  # every holding row takes the cheap path
    holders = [q for q in range(40) if 4 in lookup.related(q, "buy")[0].tolist()]
    before = {q: lookup.related(q, "buy")[0].tolist() for q in holders}
    lookup.remove(["i4"])
    for q in holders:
        after = lookup.related(q, "buy")[0].tolist()
        assert after == [t for t in before[q] if t != 4] and len(after) == 4
        assert (np.diff(lookup.related(q, "buy")[1]) <= 1e-9).all()
