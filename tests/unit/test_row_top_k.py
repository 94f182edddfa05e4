"""Row-wise top-k: ``entered`` (sparse candidates) leaves the rows ``merged`` (dense) leaves."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain.row_top_k import beaten_rows, entered, merged, top_k, top_values


def rows_and_candidates(
    rng: np.random.Generator, n: int, k: int, c: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sorted rows (some padded with -1 / -inf), and c new candidates' similarities."""
    sims = rng.random((n, k)).astype(np.float32)
    sims[rng.random((n, k)) < 0.2] = -np.inf
    sims = -np.sort(-sims, axis=1)
    ids = rng.integers(0, 50, (n, k))
    ids[~np.isfinite(sims)] = -1
    new = rng.random((n, c)).astype(np.float32)
    new[rng.random((n, c)) < 0.2] = -np.inf
    return ids, sims, rng.choice(np.arange(100, 200), c, replace=False), new


@pytest.mark.parametrize("seed", range(20))
def test_sparse_entry_of_the_beating_candidates_equals_the_dense_merge(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k, c = (int(x) for x in rng.integers(1, 30, 3))
    ids, sims, new_ids, new = rows_and_candidates(rng, n, k, c)
    dense_i, dense_v = merged(ids, sims, new_ids, new, k)
    at = np.nonzero(new > sims[:, -1:])  # what beats each row's K-th, as the lookup offers
    sparse_i, sparse_v = entered(ids, sims, at, new_ids, new[at], k)
    assert sparse_i.tolist() == dense_i.tolist()
    assert np.array_equal(sparse_v, dense_v)


def test_ties_go_to_the_lower_column_existing_targets_first() -> None:
    ids = np.array([[7, 8, -1]])
    sims = np.array([[0.9, 0.5, -np.inf]], dtype=np.float32)
    new_ids = np.array([20, 21, 22])
    at = (np.array([0, 0, 0]), np.array([0, 1, 2]))
    vals = np.array([0.5, 0.9, 0.5], dtype=np.float32)
    out_i, out_v = entered(ids, sims, at, new_ids, vals, 3)
    assert out_i.tolist() == [[7, 21, 8]]
    assert out_v[0].tolist() == pytest.approx([0.9, 0.9, 0.5])


def test_rows_offered_nothing_are_unchanged_and_padding_stays_minus_one() -> None:
    ids = np.array([[3, -1], [4, 5]])
    sims = np.array([[0.4, -np.inf], [0.8, 0.6]], dtype=np.float32)
    out_i, out_v = entered(
        ids,
        sims,
        (np.array([1]), np.array([0])),
        np.array([9]),
        np.array([0.7], dtype=np.float32),
        2,
    )
    assert out_i.tolist() == [[3, -1], [4, 9]]
    assert out_v[1].tolist() == pytest.approx([0.8, 0.7])


@pytest.mark.parametrize("cut", [False, True], ids=["a few offered", "rows cut short"])
def test_entered_with_a_dense_block_leaves_the_dense_merge_s_rows_either_way(cut: bool) -> None:
    """A few candidates a row go through ``entered``; rows a release cut short (K-th -inf)
    are offered every new target and go through the dense merge: the same rows."""
    rng = np.random.default_rng(7)
    ids, sims, new_ids, new = rows_and_candidates(rng, 40, 5, 60)
    if cut:
        sims[:, -1], ids[:, -1] = -np.inf, -1
    else:  # full rows of strong targets: ~3 of the 60 beat a row's K-th
        sims = np.where(np.isfinite(sims), 0.95 + 0.05 * sims, 0.95).astype(np.float32)
        ids[ids < 0] = 99
    at = np.nonzero(new > sims[:, -1:])
    got_i, got_v = entered(ids, sims, at, new_ids, new[at], 5, lambda: new)
    want_i, want_v = merged(ids, sims, new_ids, new, 5)
    assert got_i.tolist() == want_i.tolist()
    assert np.array_equal(got_v, want_v)


def reference_top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A full stable sort of each row: values descending, ties to the lower column; entries
    that are not above -inf (-inf, NaN) never selected; a selected +inf keeps index -1."""
    out_i = np.full((sims.shape[0], k), -1, dtype=np.int64)
    out_v = np.full((sims.shape[0], k), -np.inf, dtype=np.float32)
    for r, row in enumerate(sims):
        order = [j for j in np.argsort(-row, kind="stable") if row[j] > -np.inf][:k]
        out_v[r, : len(order)] = row[order]
        out_i[r, : len(order)] = [j if np.isfinite(row[j]) else -1 for j in order]
    return out_i, out_v


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_k_equals_a_stable_full_sort(seed: int, dtype: type) -> None:
    """Random blocks with ties (values from a few levels), -inf and NaN entries, rows with
    fewer finite columns than k, k above the column count, and +inf."""
    rng = np.random.default_rng(seed)
    n, cols, k = int(rng.integers(1, 40)), int(rng.integers(1, 300)), int(rng.integers(1, 30))
    sims = rng.integers(0, 6, (n, cols)).astype(dtype) / 5 - 0.3
    sims[rng.random((n, cols)) < 0.3] = -np.inf
    sims[rng.random((n, cols)) < 0.02] = np.nan
    sims[rng.random((n, cols)) < 0.01] = np.inf
    sims[0] = -np.inf
    got_i, got_v = top_k(sims, k)
    want_i, want_v = reference_top_k(sims, k)
    assert got_i.tolist() == want_i.tolist()
    assert np.array_equal(got_v, want_v)


def test_top_k_of_a_column_slice_reads_the_slice() -> None:
    sims = np.arange(60, dtype=np.float32).reshape(6, 10)[:, ::-3]  # (not contiguous)
    got_i, got_v = top_k(sims, 2)
    assert got_i.tolist() == [[0, 1]] * 6
    assert got_v[:, 0].tolist() == sims[:, 0].tolist()


def test_top_k_of_nothing() -> None:
    assert top_k(np.zeros((3, 0), dtype=np.float32), 4)[0].tolist() == [[-1] * 4] * 3
    assert top_k(np.zeros((3, 5), dtype=np.float32), 0)[1].shape == (3, 0)


def test_top_values_are_top_k_s_values() -> None:
    rng = np.random.default_rng(3)
    sims = rng.random((20, 50)).astype(np.float32)
    assert np.array_equal(top_values(sims, 7), -np.sort(-sims, axis=1)[:, :7])


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_merged_is_the_top_k_of_both_blocks_side_by_side(seed: int, dtype: type) -> None:
    """The two blocks stacked (existing targets first), selected by the full sort, the ids
    gathered back: ties between an existing target and a new one keep the existing first."""
    rng = np.random.default_rng(seed)
    n, k, c = int(rng.integers(1, 30)), int(rng.integers(1, 12)), int(rng.integers(1, 40))
    ids, sims, new_ids, _ = rows_and_candidates(rng, n, k, c)
    sims = np.round(sims * 4) / 4  # (ties within and across the blocks)
    new = (rng.integers(0, 5, (n, c)) / 4).astype(dtype)
    new[rng.random((n, c)) < 0.2] = -np.inf
    both_i = np.hstack([ids, np.broadcast_to(new_ids, new.shape)])
    top, want_v = reference_top_k(np.hstack([sims, new]), k)
    want_i = np.where(top >= 0, np.take_along_axis(both_i, np.maximum(top, 0), 1), -1)
    got_i, got_v = merged(ids, sims, new_ids, new, k)
    assert got_i.tolist() == want_i.tolist()
    assert np.array_equal(got_v, want_v)


@pytest.mark.parametrize("seed", range(8))
def test_beaten_rows_are_the_rows_with_an_entry_above_their_kth(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 50)), int(rng.integers(1, 30))
    sims = (rng.integers(0, 5, (n, c)) / 4).astype(np.float32)
    sims[rng.random((n, c)) < 0.1] = np.nan
    kth = (rng.integers(0, 6, n) / 4).astype(np.float32)
    kth[rng.random(n) < 0.2] = -np.inf
    want = np.unique(np.nonzero(sims > kth[:, None])[0])
    assert beaten_rows(sims, kth).tolist() == want.tolist()
    assert beaten_rows(sims[:, :0], kth).size == 0
