"""relation_recent: relations of the latest queries decayed by how many *events* back they are.
Values below are computed by hand from the rows of a fixed relation table."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain.catalog import Catalog
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile
from stream.domain.recent_relation import event_ranks, recent_relation
from stream.domain.signals import SIGNALS, candidate_signals

NOW = 1_700_000_000_000


class Table:
    """A fixed relation table: query index -> (targets, strengths)."""

    def __init__(self, rows: dict[int, tuple[list[int], list[float]]]) -> None:
        self.rows = rows

    def related(self, idx: int, role: str = "view") -> tuple[np.ndarray, np.ndarray]:
        targets, strengths = self.rows.get(idx, ([], []))
        return np.array(targets, dtype=np.int64), np.array(strengths, dtype=np.float64)


def shop(n: int = 5) -> Catalog:
    catalog = Catalog()
    for i in range(n):
        catalog.upsert({"item_id": f"i{i}", "title": f"Item {i}"})
    return catalog


def test_lines_of_one_event_share_a_rank() -> None:
    queries = [["a", "view", 30], ["b", "buy", 20], ["c", "buy", 20], ["d", "view", 10]]
    assert event_ranks(queries) == [0, 1, 1, 2]
    assert event_ranks([]) == []


def test_each_query_weighs_decay_to_its_rank_times_its_role() -> None:
    # i0 viewed now (rank 0), i1 bought one event back (rank 1), i2 viewed two back (rank 2)
    queries = [["i0", "view", 300], ["i1", "buy", 200], ["i2", "view", 100]]
    table = Table({0: ([3, 4], [1.0, 0.5]), 1: ([3], [0.4]), 2: ([4], [1.0])})
    targets, scores = recent_relation(queries, shop(), table, decay=0.5, buy_weight=0.7)
    assert targets.tolist() == [3, 4]
    # i3: 1.0 * 1 + 0.4 * 0.7 * 0.5 = 1.14; i4: 0.5 * 1 + 1.0 * 0.25 = 0.75
    assert scores.tolist() == pytest.approx([1.14, 0.75])


def test_clock_time_does_not_matter_only_the_order() -> None:
    table = Table({0: ([3], [1.0]), 1: ([4], [1.0])})
    fast = [["i0", "view", 1_001], ["i1", "view", 1_000]]  # a millisecond apart
    slow = [["i0", "view", 10**9], ["i1", "view", 1_000]]  # days apart
    for queries in (fast, slow):
        _, scores = recent_relation(queries, shop(), table, decay=0.8, buy_weight=1.0)
        assert scores.tolist() == pytest.approx([1.0, 0.8])


def test_unknown_items_and_empty_rows_give_nothing() -> None:
    queries = [["gone", "view", 3], ["i0", "view", 2]]
    targets, scores = recent_relation(queries, shop(), Table({}), decay=0.8, buy_weight=1.0)
    assert targets.size == 0 and scores.size == 0


def test_the_signal_column_is_scaled_to_its_best_candidate_and_adds_candidates() -> None:
    catalog = shop()
    profile = UserProfile("u", queries=[["i0", "view", NOW], ["i1", "view", NOW - 1]])
    table = Table({0: ([2], [0.5]), 1: ([3], [0.6])})
    rp = RankingProfile(recent_decay=0.5, popular_candidates=0)
    sig = candidate_signals(profile, catalog, table, rp, NOW)
    values = sig.values[:, SIGNALS.index("relation_recent")].tolist()
    col = dict(zip(sig.cands.tolist(), values, strict=True))
    # i2: 0.5 * 1 = 0.5; i3: 0.6 * 0.5 = 0.3; scaled to the best: 1.0 and 0.6
    assert col[2] == pytest.approx(1.0) and col[3] == pytest.approx(0.6)
    off = candidate_signals(profile, catalog, table, RankingProfile(w_relation_recent=0.0), NOW)
    assert not off.values[:, SIGNALS.index("relation_recent")].any()


def _per_query_oracle(
    queries: list[list[object]], catalog: Catalog, relations: object, decay: float, buy: float
) -> tuple[np.ndarray, np.ndarray]:
    """The signal as it was first written: one ``related`` call per query, then np.unique."""
    targets, scores = [], []
    for (item_id, role, _), rank in zip(queries, event_ranks(queries), strict=True):
        q = catalog.index.get(str(item_id))
        if q is None:
            continue
        found, strengths = relations.related(q, str(role))  # type: ignore[attr-defined]
        if found.size:
            targets.append(found)
            scores.append(strengths * ((buy if role == "buy" else 1.0) * decay**rank))
    if not targets:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    uniq, inv = np.unique(np.concatenate(targets), return_inverse=True)
    return uniq, np.bincount(inv, weights=np.concatenate(scores), minlength=uniq.size)


@pytest.mark.parametrize("blend", [False, True], ids=["cooccurrence", "pfeed-blend"])
def test_rows_read_once_for_every_signal_give_the_per_query_signal_bit_for_bit(
    blend: bool,
) -> None:
    from stream.domain.query_rows import read_query_rows
    from stream.domain.recent_relation import recent_from_rows
    from tests.unit.fast_rank_workload import learned_shop

    shop_ = learned_shop(n_events=1200, blend=blend)
    e = shop_.engine
    checked = 0
    for profile in shop_.profiles.values():
        rows = read_query_rows(profile.queries, e.catalog, e.relations, 50)  # deeper: a prefix
        for n in (1, 5, 20):
            queries = profile.queries[:n]
            new = recent_from_rows(rows, queries, 0.8, 0.7)
            old = _per_query_oracle(queries, e.catalog, e.relations, 0.8, 0.7)
            assert new[0].tolist() == old[0].tolist()
            assert new[1].tolist() == old[1].tolist()
            checked += old[0].size
    assert checked > 1000
