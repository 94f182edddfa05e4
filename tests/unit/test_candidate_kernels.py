"""The compiled candidate block equals its numpy specification bit for bit, and falls back to
it (raising as numpy does) on an index it cannot read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stream.domain.candidate_kernels import (
    Block,
    candidate_block,
    candidate_block_kernel,
    candidate_block_numpy,
)

COLS = np.array([0, 1, 2, 8, 12, 4, 5], dtype=np.int64)
N_SIGNALS = 14


def _inputs(rng: np.random.Generator, items: int = 400, width: int = 12) -> dict[str, Any]:
    features = 300
    ids = np.unique(rng.integers(1, features, 120))  # the user's features (never PAD, 0)
    session = rng.standard_normal(ids.size) * rng.random(ids.size) * 50
    session[rng.random(ids.size) < 0.3] = 0.0  # only on the long-term horizon
    long_term = rng.standard_normal(ids.size) * 20
    feature_ids = rng.integers(0, features, (items, width)).astype(np.int32)
    feature_ids[:, width // 2 :][rng.random((items, width - width // 2)) < 0.5] = 0
    rel_keys = np.unique(rng.integers(0, items, 120))
    recent_keys = np.unique(rng.integers(0, items, 60))
    rep_keys = rng.choice(items, 15, replace=False).astype(np.int64)
    view_keys = rng.choice(items, 25, replace=False).astype(np.int64)
    return {
        "pooled": rng.integers(0, items, 900).astype(np.int64),
        "available": rng.integers(0, 3, items).astype(np.int64),
        "deleted": rng.random(items) < 0.05,
        "flags": None,
        "banned": rng.integers(0, items, 40).astype(np.int64),
        "seen_keys": rng.integers(0, items, 50).astype(np.int64),
        "feature_ids": feature_ids,
        "affinity": (ids, session, long_term, float(np.abs(session).max()), 1.0),
        "relation": (
            rel_keys,
            rng.random(rel_keys.size) * 3,
            rng.standard_normal(rel_keys.size),
            recent_keys,
            rng.random(recent_keys.size),
        ),
        "sparse": (rep_keys, rng.random(15), view_keys, rng.random(25)),
        "cols": COLS,
        "n_signals": N_SIGNALS,
    }


def _same(inputs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    want = candidate_block_numpy(Block(**inputs))
    got = candidate_block(Block(**inputs))
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()  # bit for bit
    return got


@pytest.mark.parametrize("seed", range(12))
def test_the_kernel_equals_the_numpy_block(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inputs = _inputs(rng)
    if seed % 3 == 1:
        inputs["flags"] = rng.random(400) < 0.3  # a feed with its own flag (deals, new)
    cands, values, seen = _same(inputs)
    assert cands.size and seen.any()
    assert values[:, COLS].any(axis=0).all()  # every block column was filled somewhere


@pytest.mark.parametrize("width", [1, 5, 7, 8, 9, 16, 23, 128])
def test_feature_rows_of_any_width_sum_as_numpy_does(width: int) -> None:
    _same(_inputs(np.random.default_rng(width), width=width))


def test_empty_and_degenerate_inputs() -> None:
    rng = np.random.default_rng(5)
    inputs = _inputs(rng)
    inputs["pooled"] = np.zeros(0, dtype=np.int64)
    cands, values, _ = _same(inputs)
    assert cands.size == 0 and values.shape == (0, N_SIGNALS)
    inputs = _inputs(rng)
    # relation sums all zero or negative: the zero column is kept, the negative one scaled
    rel = inputs["relation"]
    inputs["relation"] = (rel[0], np.zeros(rel[0].size), -rel[1], rel[3], rel[4] * np.nan)
    _same(inputs)
    inputs["banned"] = inputs["pooled"].copy()  # everything banned
    assert _same(inputs)[0].size == 0


def test_a_row_wider_than_the_pairwise_block_goes_to_numpy() -> None:
    inputs = _inputs(np.random.default_rng(9), width=129)
    assert not candidate_block_kernel(
        inputs["pooled"], inputs["available"], inputs["deleted"], np.zeros(0, np.bool_), False,
        inputs["banned"], inputs["seen_keys"], inputs["feature_ids"], *inputs["affinity"],
        *inputs["relation"], *inputs["sparse"], COLS, N_SIGNALS,
    )[3]  # fmt: skip
    _same(inputs)


def test_an_item_index_out_of_range_raises_as_numpy_indexing_does() -> None:
    inputs = _inputs(np.random.default_rng(3))
    inputs["pooled"] = np.append(inputs["pooled"], 400)
    with pytest.raises(IndexError):
        candidate_block(Block(**inputs))


def test_affinity_sums_equal_the_dense_vectors_they_replaced() -> None:
    rng = np.random.default_rng(11)
    inputs = _inputs(rng)
    ids, session, long_term, s_scale, l_scale = inputs["affinity"]
    cands, values, _ = candidate_block(Block(**inputs))
    for col, weights, scale in ((0, session, s_scale), (1, long_term, l_scale)):
        dense = np.zeros(300)  # the vocabulary-sized vector of before
        dense[ids] = weights
        want = dense[inputs["feature_ids"][cands]].sum(axis=1) / scale
        assert values[:, col].tobytes() == want.tobytes()
    # a feature id beyond every id the user has reads as 0, as an unweighted one did
    inputs["feature_ids"][:, 0] = 10**6
    _same(inputs)
