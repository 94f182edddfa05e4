"""The two ways the candidate block makes its candidates unique (bitmaps over the catalog,
sorting the pool) give one result, the numpy code's, whichever the pool and catalog sizes
choose; and the row sum without scratch arrays is numpy's sum bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain.candidate_kernels import Block, candidate_block_numpy
from stream.domain.candidate_parts import (
    BITS_PER_POOLED,
    kept_by_bits,
    kept_by_sorting,
    pairwise_sum,
)
from tests.unit.test_candidate_kernels import _inputs, _same


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("cap", [1, 63, 64, 65, 200, 1000])
def test_bitmaps_and_sorting_keep_the_same_candidates(seed: int, cap: int) -> None:
    rng = np.random.default_rng(seed)
    pooled = rng.integers(0, cap, rng.integers(0, 3 * cap + 2)).astype(np.int64)
    available = rng.integers(0, 3, cap).astype(np.int64)
    deleted = rng.random(cap) < 0.1
    flags = rng.random(cap) < 0.5
    # banned and seen indexes may be out of the catalog (negative, past its end)
    banned = rng.integers(-5, cap + 5, rng.integers(0, 20)).astype(np.int64)
    seen = rng.integers(-5, cap + 5, rng.integers(0, 30)).astype(np.int64)
    for use_flags in (False, True):
        args = (pooled, available, deleted, flags, use_flags, banned, seen)
        by_bits = kept_by_bits(*args, cap)
        by_sorting = kept_by_sorting(*args)
        for a, b in zip(by_bits, by_sorting, strict=True):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_a_catalog_much_larger_than_the_pool_is_sorted_and_equal() -> None:
    rng = np.random.default_rng(4)
    inputs = _inputs(rng, items=5_000)
    inputs["pooled"] = inputs["pooled"][:3]
    assert BITS_PER_POOLED * 3 < 5_000  # the sorting way
    _same(inputs)
    inputs["pooled"] = rng.integers(0, 5_000, 900).astype(np.int64)  # the bitmaps
    inputs["seen_keys"] = inputs["pooled"][::7].copy()
    cands, _, seen = _same(inputs)
    assert cands.size and seen.any()
    assert candidate_block_numpy(Block(**inputs))[0].size == cands.size


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 12, 15, 16, 17, 64, 127, 128])
def test_the_row_sum_is_numpys(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        row = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
        row[rng.random(n) < 0.3] = 0.0
        row[rng.random(n) < 0.1] = -0.0
        got = pairwise_sum(np.concatenate([row, rng.random(3)]), n)  # only the first n
        want = row.reshape(1, n).sum(axis=1)[0]
        assert np.float64(got).tobytes() == want.tobytes()
    zeros = np.full(n, -0.0)  # numpy's reduction starts from +0.0: the sum is +0.0
    assert np.float64(pairwise_sum(zeros, n)).tobytes() == zeros.reshape(1, n).sum(1).tobytes()
