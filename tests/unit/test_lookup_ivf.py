"""The approximate full build: inverted lists over the targets, checked against exact rows."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain import lookup_ivf
from stream.domain.lookup import EXACT_MAX, ROLES, QueryTargetLookup
from stream.settings import Settings


def grouped(n: int, groups: int, d: int = 16, noise: float = 0.15, seed: int = 3) -> np.ndarray:
    """(3, n, d) unit vectors around ``groups`` centres, as learned item embeddings group
    (items of one category and brand sit together)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, d))
    of = rng.integers(0, groups, size=n)
    x = centres[of][None] + noise * rng.standard_normal((3, n, d))
    return (x / np.linalg.norm(x, axis=2, keepdims=True)).astype(np.float32)


def scattered(n: int, d: int = 16, seed: int = 4) -> np.ndarray:
    """Unit vectors with no structure: the inverted lists cannot find their neighbours."""
    x = np.random.default_rng(seed).standard_normal((3, n, d))
    return (x / np.linalg.norm(x, axis=2, keepdims=True)).astype(np.float32)


def names(n: int) -> list[str]:
    return [f"i{k}" for k in range(n)]


def test_grouped_items_get_the_exact_rows_and_the_check_says_so() -> None:
    emb = grouped(3000, groups=60)
    exact = QueryTargetLookup(names(3000), emb, k=10).build()
    approx = QueryTargetLookup(names(3000), emb, k=10).build(exact_max=0)
    assert exact.recall == {}
    assert set(approx.recall) == set(ROLES)
    assert all(value >= lookup_ivf.MIN_RECALL for value in approx.recall.values())
    for role in ROLES:
        assert (approx.rows[role] == exact.rows[role]).mean() > 0.99
        np.testing.assert_allclose(approx.strengths[role], exact.strengths[role], atol=1e-5)


def test_scattered_items_fail_the_check_and_are_built_exactly() -> None:
    emb = scattered(3000)
    exact = QueryTargetLookup(names(3000), emb, k=10).build()
    checked = QueryTargetLookup(names(3000), emb, k=10).build(exact_max=0)
    assert checked.recall == {}  # the approximate rows were not kept
    for role in ROLES:
        np.testing.assert_array_equal(checked.rows[role], exact.rows[role])


def test_without_the_check_scattered_rows_would_differ() -> None:
    """What the check guards against: the same lists and probes, kept unchecked."""
    emb = scattered(3000)
    exact = QueryTargetLookup(names(3000), emb, k=10).build()
    lists = lookup_ivf.make_lists(emb[2], np.ones(3000, dtype=bool), lookup_ivf.n_lists(3000))
    own = np.arange(3000)
    idx, _ = lookup_ivf.approximate_rows(emb[0], own, emb[2], lists, 10, lookup_ivf.NPROBE)
    assert lookup_ivf.recall(idx, exact.rows["view"]) < lookup_ivf.MIN_RECALL


def test_rows_never_hold_the_item_itself_or_an_inactive_target() -> None:
    emb = grouped(3000, groups=60)
    lookup = QueryTargetLookup(names(3000), emb, k=10)
    gone = np.arange(0, 3000, 7)
    lookup.active[gone] = False
    lookup.build(exact_max=0)
    assert lookup.recall, "built approximately"
    for role in ROLES:
        rows = lookup.rows[role]
        assert not np.isin(rows, gone).any()
        assert not (rows == np.arange(3000)[:, None]).any()
        assert (lookup.lengths[role] == (rows >= 0).sum(axis=1)).all()


def test_small_catalogs_and_hub_aware_rows_stay_exact() -> None:
    small = grouped(300, groups=10)  # 35 lists: probing 16 of them is no saving
    assert QueryTargetLookup(names(300), small, k=5).build(exact_max=0).recall == {}
    emb = grouped(3000, groups=60)
    hub = QueryTargetLookup(names(3000), emb, k=5, hub_k=20).build(exact_max=0)
    assert hub.recall == {}  # hubness r(t) needs every pair: exact only


def test_progress_is_reported_per_stage() -> None:
    seen: dict[str, tuple[int, int]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        seen[stage] = (done, total)

    QueryTargetLookup(names(3000), grouped(3000, 60), k=10).build(exact_max=0, progress=progress)
    assert set(seen) == {"view lists", "buy lists"}
    assert all(done == total for done, total in seen.values())
    QueryTargetLookup(names(500), grouped(500, 20), k=10).build(progress=progress)
    assert seen["exact rows"] == (500, 500)


def test_every_active_target_is_in_exactly_one_list() -> None:
    emb = grouped(2000, groups=30)
    active = np.ones(2000, dtype=bool)
    active[::5] = False
    lists = lookup_ivf.make_lists(emb[2], active, 40)
    assert len(lists) == 40
    assert sorted(lists.members.tolist()) == np.flatnonzero(active).tolist()
    assert lists.starts[0] == 0 and lists.starts[-1] == lists.members.size
    assert (np.diff(lists.starts) >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(lists.centroids, axis=1), 1.0, atol=1e-5)


def test_recall_counts_held_targets_of_the_exact_rows() -> None:
    exact = np.array([[1, 2, 3, -1], [4, 5, -1, -1]])
    approx = np.array([[3, 1, 9, -1], [5, 4, -1, -1]])
    assert lookup_ivf.recall(approx, exact) == pytest.approx(4 / 5)
    assert lookup_ivf.recall(approx[:0], exact[:0]) == 1.0


def test_the_worker_setting_defaults_to_the_domain_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RECSTREAM_LOOKUP_EXACT_MAX", raising=False)
    assert Settings.from_env().lookup_exact_max == EXACT_MAX == Settings().lookup_exact_max
    monkeypatch.setenv("RECSTREAM_LOOKUP_EXACT_MAX", "0")
    assert Settings.from_env().lookup_exact_max == 0
    monkeypatch.setenv("RECSTREAM_LOOKUP_EXACT_MAX", "-1")
    with pytest.raises(ValueError, match="RECSTREAM_LOOKUP_EXACT_MAX"):
        Settings.from_env()
