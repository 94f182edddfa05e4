"""The grouping of every row read, shared by both relation signals (``QueryRows.groups``)."""

from __future__ import annotations

import numpy as np

from stream.domain.query_rows import QueryRows


def test_any_prefix_sums_per_target_as_its_own_grouping_would() -> None:
    rng = np.random.default_rng(5)
    targets = rng.integers(0, 30, size=200)
    weights = rng.random(200)
    row_of = np.sort(rng.integers(0, 10, size=200))
    rows = QueryRows(list(range(10)), list(range(10)), ["view"] * 10, [0.0] * 10,
                     (targets, weights, row_of))  # fmt: skip
    g = rows.groups
    assert np.array_equal(g.uniq, np.unique(targets))
    assert np.array_equal(g.uniq[g.inv], targets)
    assert np.array_equal(targets[g.order], np.sort(targets, kind="stable"))
    for end in (1, 57, 200):
        uniq, inv = np.unique(targets[:end], return_inverse=True)
        alone = np.bincount(inv, weights=weights[:end])  # the prefix grouped on its own
        inv_all = g.inv[:end]
        present = np.bincount(inv_all, minlength=g.uniq.size) > 0
        shared = np.bincount(inv_all, weights=weights[:end], minlength=g.uniq.size)[present]
        assert np.array_equal(g.uniq[present], uniq)
        assert shared.tobytes() == alone.tobytes()  # bit for bit: same entry order per target
    assert rows.groups is g  # made once
