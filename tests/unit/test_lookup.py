"""The query→target lookup: exact top-K, incremental upsert = rebuild, removal, alignment."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain.lookup import HUB_K, QueryTargetLookup

HUB = 50  # hub-aware rows as measured (the shipped default, ``HUB_K``, is raw rows)


def unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    x = rng.standard_normal((3, n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=2, keepdims=True)


def brute(
    emb: np.ndarray, role: int, q: int, k: int, active: np.ndarray, hub_k: int = HUB_K
) -> list[int]:
    """Row of q by CSLS, from the full similarity matrix sorted: cos(q, t) - r(t), r(t) the
    mean of t's ``hub_k`` highest similarities to the other items' queries, targets with
    cos <= 0 left out (0: raw cosine, every target)."""
    r = np.zeros(emb.shape[1])
    if hub_k:
        to_queries = emb[2] @ emb[role].T  # (targets, queries)
        np.fill_diagonal(to_queries, -np.inf)
        nearest = min(hub_k, emb.shape[1] - 1)  # fewer other items: all of them
        r = np.sort(to_queries, axis=1)[:, -nearest:].mean(axis=1)
    cos = emb[role, q] @ emb[2].T
    sims = cos - r
    if hub_k:
        sims[cos <= 0] = -np.inf
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


@pytest.mark.parametrize("hub_k", [0, HUB])
def test_build_matches_brute_force_in_small_chunks(hub_k: int) -> None:
    rng = np.random.default_rng(0)
    emb = unit(rng, 50)
    lookup = QueryTargetLookup(ids(50), emb, k=10, hub_k=hub_k).build(chunk=7)
    active = np.ones(50, dtype=bool)
    for q in (0, 13, 49):
        for ri, role in enumerate(("view", "buy")):
            targets, strengths = lookup.related(q, role)
            assert targets.tolist() == brute(emb, ri, q, 10, active, hub_k)
            assert q not in targets.tolist()
            # strength is the cosine (clipped); hub-aware rows are ordered by CSLS instead
            cos = np.clip(emb[ri, q] @ emb[2, targets].T, 0, 1)
            np.testing.assert_allclose(strengths, cos, atol=1e-6)
            if hub_k:
                assert (cos > 0).all()
            else:
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
    """Raw rows: exact. (Hub-aware, the changed item's old query would still count in the
    others' r until a full build: documented, not tested as exact.)"""
    rng = np.random.default_rng(4)
    emb = unit(rng, 40)
    lookup = QueryTargetLookup(ids(40), emb, k=5, hub_k=0).build()
    changed = emb.copy()
    changed[:, 7] = unit(rng, 1)[:, 0]
    lookup.upsert(["i7"], changed[:, 7:8])
    assert_same_rows(lookup, QueryTargetLookup(ids(40), changed, k=5, hub_k=0).build())


@pytest.mark.parametrize("hub_k", [0, HUB])
def test_removed_item_is_no_target_but_keeps_its_rows(hub_k: int) -> None:
    rng = np.random.default_rng(5)
    emb = unit(rng, 30)
    lookup = QueryTargetLookup(ids(30), emb, k=5, hub_k=hub_k).build()
    holders = [q for q in range(30) if 4 in lookup.related(q, "buy")[0].tolist()]
    assert holders
    lookup.remove(["i4"])
    active = np.ones(30, dtype=bool)
    active[4] = False
    for q in holders:
        assert lookup.related(q, "buy")[0].tolist() == brute(emb, 1, q, 5, active, hub_k)
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


@pytest.mark.parametrize("hub_k", [0, HUB])
def test_large_catalog_takes_the_sampled_threshold_path_and_stays_exact(hub_k: int) -> None:
    rng = np.random.default_rng(7)
    emb = unit(rng, 1500, d=16)
    lookup = QueryTargetLookup(ids(1500), emb, k=12, hub_k=hub_k).build(chunk=100)
    lookup.remove(["i10"])
    active = np.ones(1500, dtype=bool)
    active[10] = False
    for q in (0, 10, 777, 1499):
        for ri, role in enumerate(("view", "buy")):
            assert lookup.related(q, role)[0].tolist() == brute(emb, ri, q, 12, active, hub_k)


def test_a_hub_is_cut_out_of_its_rows_past_the_recompute_limit() -> None:
    rng = np.random.default_rng(8)
    emb = unit(rng, 40)
    lookup = QueryTargetLookup(ids(40), emb, k=5, hub_k=0).build()
    lookup.max_recompute = 0  # every holding row takes the cheap path
    holders = [q for q in range(40) if 4 in lookup.related(q, "buy")[0].tolist()]
    before = {q: lookup.related(q, "buy")[0].tolist() for q in holders}
    lookup.remove(["i4"])
    for q in holders:
        after = lookup.related(q, "buy")[0].tolist()
        assert after == [t for t in before[q] if t != 4] and len(after) == 4
        assert (np.diff(lookup.related(q, "buy")[1]) <= 1e-9).all()


def test_hub_aware_rows_by_hand() -> None:
    """Targets A=(1,0), B=(0,1), H=(.7071,.7071); queries (both roles) qA=(.6,.8),
    qB=(.8,.6), qH=(1,0); k=1, hub_k=2. Raw: A's row is H (qA·H=.990 > qA·B=.8) and so is
    B's, H is a hub. r(H)=mean(.990,.990)=.990, r(B)=mean(qA·B=.8, qH·B=0)=.4,
    r(A)=mean(qB·A=.8, qH·A=1)=.9; CSLS row of A: B .8-.4=.4 beats H .990-.990=0; of B: H 0
    beats A .8-.9=-.1; of H: A 1-.9=.1 (B, cos 0, is no target). Strength stays the cosine."""
    s = np.sqrt(0.5)
    queries = np.array([[0.6, 0.8], [0.8, 0.6], [1.0, 0.0]], dtype=np.float32)
    targets = np.array([[1.0, 0.0], [0.0, 1.0], [s, s]], dtype=np.float32)
    emb = np.stack([queries, queries, targets])
    raw = QueryTargetLookup(["A", "B", "H"], emb, k=1, hub_k=0).build()
    assert [raw.related(i, "buy")[0].tolist() for i in range(3)] == [[2], [2], [0]]
    hub = QueryTargetLookup(["A", "B", "H"], emb, k=1, hub_k=2).build()
    np.testing.assert_allclose(hub.hub["buy"], [0.9, 0.4, 1.4 * s], atol=1e-6)
    assert [hub.related(i, "buy")[0].tolist() for i in range(3)] == [[1], [2], [0]]
    assert hub.related(0, "view")[1].tolist() == pytest.approx([0.8])


@pytest.mark.parametrize("max_recompute", [0, 2048])
def test_hubness_follows_new_queries_exactly(max_recompute: int) -> None:
    """Upserted items raise the r of the targets they are close to. Within ``max_recompute``
    the rows holding such targets are recomputed (rows = a full rebuild); past it, only their
    scores move (each held score is still cos - r of the current r). r itself is exact."""
    rng = np.random.default_rng(9)
    emb = unit(rng, 70)
    incremental = QueryTargetLookup(ids(50), emb[:, :50], k=8, hub_k=5).build()
    incremental.max_recompute = max_recompute
    incremental.upsert(ids(12, 50), emb[:, 50:62], chunk=4)
    incremental.upsert(ids(8, 62), emb[:, 62:])
    full = QueryTargetLookup(ids(70), emb, k=8, hub_k=5).build()
    for role in ("view", "buy"):
        np.testing.assert_allclose(incremental.hub[role], full.hub[role], atol=1e-6)
        np.testing.assert_allclose(incremental.near[role], full.near[role], atol=1e-6)
        rows, held = incremental.rows[role], incremental.rows[role] >= 0
        ri = 0 if role == "view" else 1
        cos = np.einsum("nd,nkd->nk", emb[ri], emb[2][np.maximum(rows, 0)])
        expect = cos - full.hub[role][np.maximum(rows, 0)]
        np.testing.assert_allclose(incremental.sims[role][held], expect[held], atol=1e-5)
    if max_recompute:
        assert_same_rows(incremental, full)
    else:  # the new items' own rows are computed against the current r: exact
        for q in range(50, 70):
            assert incremental.related(q, "buy")[0].tolist() == full.related(q, "buy")[0].tolist()


def test_hub_aware_rows_leave_out_targets_opposite_to_the_query() -> None:
    """An item the encoder places away from everything has a low r, so plain CSLS (cos - r)
    would lift it into rows it is opposite to (seen in the prequential leakage test: a
    never-touched item with cos -0.3..-0.5 to every query topped their rows). Targets with
    cos <= 0 are no targets. Here: 30 items around e1, "odd" = -e1 (cos < 0 with all)."""
    rng = np.random.default_rng(10)
    near = rng.standard_normal((3, 30, 8)).astype(np.float32) * 0.3
    near[:, :, 0] += 1.0
    odd = np.zeros((3, 1, 8), dtype=np.float32)
    odd[:, 0, 0] = -1.0
    emb = np.concatenate([near, odd], axis=1)
    emb /= np.linalg.norm(emb, axis=2, keepdims=True)
    lookup = QueryTargetLookup([*ids(30), "odd"], emb, k=5, hub_k=10).build()
    assert lookup.hub["buy"][30] < lookup.hub["buy"][:30].min()  # the lowest r of all
    plain = emb[1, :30] @ emb[2].T - lookup.hub["buy"]  # what unmasked CSLS would rank by
    np.fill_diagonal(plain[:, :30], -np.inf)
    assert (np.argmax(plain, axis=1) == 30).any()  # ... and there it tops rows
    for q in range(30):
        assert 30 not in lookup.related(q, "buy")[0].tolist()
        assert lookup.related(q, "buy")[0].size == 5


def test_a_copy_is_updated_apart_from_the_lookup_it_copies() -> None:
    """A worker updates a copy in a thread while ranking reads the original: the original's
    rows, ids and embeddings stay as they were, and the copy equals an in-place update."""
    rng = np.random.default_rng(11)
    emb = unit(rng, 50)
    original = QueryTargetLookup(ids(40), emb[:, :40], k=8).build()
    before = {r: original.rows[r].copy() for r in ("view", "buy")}
    copied = original.copy(capacity=50)
    copied.upsert(ids(10, 40), emb[:, 40:])
    copied.upsert(["i3"], emb[:, 45:46])  # a changed item
    copied.remove(["i7"])
    assert len(original) == 40 and "i45" not in original.index and original.active[7]
    assert all(np.array_equal(original.rows[r], before[r]) for r in ("view", "buy"))
    assert np.array_equal(original.embeddings, emb[:, :40])
    in_place = QueryTargetLookup(ids(40), emb[:, :40], k=8).build()
    in_place.upsert(ids(10, 40), emb[:, 40:])
    in_place.upsert(["i3"], emb[:, 45:46])
    in_place.remove(["i7"])
    assert_same_rows(copied, in_place)
