"""BlendedRelations: the learned lookup and online co-occurrence merged per query."""

from __future__ import annotations

import numpy as np
import pytest

from stream.adapters.encoder import BUNDLED_MODEL_DIR, OnnxItemEncoder
from stream.domain import relation_kernels
from stream.domain.blended import BlendedRelations, blend_into
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine, Trigger
from stream.domain.events import event_from_message
from stream.domain.lookup import QueryTargetLookup
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile, rank
from stream.domain.relation_rows import Rows
from stream.domain.relations import CoOccurrence

NOW = 1_700_000_000_000


class Fixed:
    """A RelatedItems with fixed rows and a version, like the lookup."""

    def __init__(self, rows: dict[int, tuple[list[int], list[float]]]) -> None:
        self.table = rows
        self.version = 0

    def related(self, idx: int, role: str = "view") -> tuple[np.ndarray, np.ndarray]:
        t, s = self.table.get(idx, ([], []))
        return np.asarray(t, dtype=np.int64), np.asarray(s, dtype=np.float64)


def as_dict(row: tuple[np.ndarray, np.ndarray]) -> dict[int, float]:
    return {int(t): round(float(s), 6) for t, s in zip(*row, strict=True)}


def test_rows_are_the_weighted_union_strongest_first() -> None:
    cooc = CoOccurrence()
    for _ in range(3):
        cooc.observe([1, 2])
    cooc.observe([1, 3])
    lookup = Fixed({1: ([4, 2], [0.9, 0.5])})
    blended = BlendedRelations(cooc, lookup, lookup_weight=1.0, cooccurrence_weight=3.0)
    co = as_dict(cooc.related(1))
    got = blended.related(1)
    # lookup strengths by position in the row: 4 first (1.0), 2 second (0.5)
    expected = {
        2: round((0.5 * 1.0 + co[2] * 3.0) / 4.0, 6),
        3: round(co[3] * 3.0 / 4.0, 6),
        4: round(1.0 / 4.0, 6),
    }
    assert as_dict(got) == expected
    assert np.all(np.diff(got[1]) <= 0)


def test_a_query_known_to_one_source_keeps_its_strengths() -> None:
    cooc = CoOccurrence()
    cooc.observe([1, 2])
    lookup = Fixed({7: ([8, 9], [-0.3, -0.4])})  # 7 is cold: nobody interacted with it
    blended = BlendedRelations(cooc, lookup, lookup_weight=1.0, cooccurrence_weight=5.0)
    # negative cosines (an anisotropic space) still rank: strengths are row positions
    assert as_dict(blended.related(7)) == {8: 1.0, 9: 0.5}
    assert as_dict(blended.related(1)) == as_dict(cooc.related(1))
    without = BlendedRelations(cooc, None)
    assert without.related(7)[0].size == 0


def test_merged_rows_follow_both_sources() -> None:
    cooc = CoOccurrence()
    cooc.observe([1, 2])
    lookup = Fixed({1: ([4], [0.5])})
    blended = BlendedRelations(cooc, lookup)
    assert set(blended.related(1)[0].tolist()) == {2, 4}
    cooc.observe([1, 3])  # co-occurrence row changes: a new tuple comes back
    assert set(blended.related(1)[0].tolist()) == {2, 3, 4}
    lookup.table[1] = ([5], [0.5])
    lookup.version += 1  # an upsert into the lookup
    assert set(blended.related(1)[0].tolist()) == {2, 3, 5}
    blended.set_lookup(Fixed({1: ([6], [0.5])}))  # a hot reload
    assert set(blended.related(1)[0].tolist()) == {2, 3, 6}


def test_zero_weights_switch_a_source_off() -> None:
    cooc = CoOccurrence()
    cooc.observe([1, 2])
    lookup = Fixed({1: ([4], [0.5])})
    assert BlendedRelations(cooc, lookup, lookup_weight=0.0).related(1)[0].tolist() == [2]
    assert BlendedRelations(cooc, lookup, cooccurrence_weight=0.0).related(1)[0].tolist() == [4]
    with pytest.raises(ValueError):
        BlendedRelations(cooc, lookup, lookup_weight=-1.0)


def catalog_messages() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(40):
        category = ["Dairy", "Milk"] if i % 2 == 0 else ["Produce", f"Fruit {i % 5}"]
        out.append(
            {
                "item_id": f"p{i}",
                "title": f"Item {i}",
                "attributes": {"category": category, "brand": "Private" if i % 3 else "Nat"},
                "flags": {"deal": False, "new": False},
            }
        )
    return out


def test_engine_keeps_learning_cooccurrence_and_a_cold_item_gets_candidates() -> None:
    msgs = catalog_messages()
    engine = Engine(ranking=RankingProfile(w_popularity=0.0, w_affinity=0.0))
    for m in msgs:
        engine.catalog.upsert(m)
    ids = [str(m["item_id"]) for m in msgs]
    lookup = QueryTargetLookup(ids, OnnxItemEncoder(BUNDLED_MODEL_DIR).embed(msgs), k=10).build()
    blended = blend_into(engine, lookup.aligned_to(engine.catalog.ids))
    assert engine.relations is blended and blend_into(engine, None) is blended
    blend_into(engine, lookup.aligned_to(engine.catalog.ids))
    cooc = blended.cooccurrence
    assert isinstance(cooc, CoOccurrence)
    order = {
        "event_id": "o1",
        "user_id": "u1",
        "ts": NOW,
        "items": [{"item_id": "p1"}, {"item_id": "p2"}],
    }
    profile, applied, _ = engine.apply(None, "u1", [event_from_message("orders", order)])
    assert applied == 1
    p1, p2 = engine.catalog.index["p1"], engine.catalog.index["p2"]
    assert cooc.related(p1)[0].tolist() == [p2]  # the learner still feeds co-occurrence
    assert p2 in blended.related(p1, "buy")[0].tolist()
    # p39 was never interacted with: only the lookup knows it, and its row names it
    cold = UserProfile("u2")
    cold.queries = [["p39", "view", NOW - 1000]]
    (rec,) = engine.recommend(cold, Trigger("e", "clicks", NOW), NOW)
    from_lookup = set(engine.catalog.ids[i] for i in lookup.related(39, "view")[0])
    named = [r for r in rec.items if any("'Item 39'" in reason for reason in r.reasons)]
    assert named and all(r.item_id in from_lookup for r in named)
    assert profile.user_id == "u1"


def test_ranking_through_the_blend_follows_the_lookup_rows_and_query_recency() -> None:
    msgs = catalog_messages()
    catalog = Catalog()
    for m in msgs:
        catalog.upsert(m)
    ids = [str(m["item_id"]) for m in msgs]
    lookup = QueryTargetLookup(ids, OnnxItemEncoder(BUNDLED_MODEL_DIR).embed(msgs), k=10).build()
    profile = UserProfile("u1")
    profile.queries = [["p7", "buy", NOW - 60_000], ["p10", "view", NOW - 3 * 86_400_000]]
    rp = RankingProfile(
        w_popularity=0.0, w_affinity=0.0, w_relation_long=0.0, max_per_category=40, size=40
    )
    ranked = rank(profile, catalog, BlendedRelations(CoOccurrence(), lookup), rp, NOW)
    recent = lookup.related(7, "buy")[0].tolist()
    old = lookup.related(10, "view")[0].tolist()
    related = [r for r in ranked if r.score > 1e-3]
    assert {catalog.index[r.item_id] for r in related} == set(recent) | set(old)
    # the recent buy's best target outranks the 3-day-old view's best target
    pos = {catalog.index[r.item_id]: n for n, r in enumerate(ranked)}
    if recent[0] != old[0]:
        assert pos[recent[0]] < pos[old[0]]
    assert any("'Item 7' you bought" in reason for r in related for reason in r.reasons)


def test_dehub_weighs_lookup_targets_by_inverse_row_frequency() -> None:
    msgs = catalog_messages()
    ids = [str(m["item_id"]) for m in msgs]
    lookup = QueryTargetLookup(ids, OnnxItemEncoder(BUNDLED_MODEL_DIR).embed(msgs), k=10).build()
    plain = BlendedRelations(CoOccurrence(), lookup, dehub=False)
    dehubbed = BlendedRelations(CoOccurrence(), lookup)
    held = np.bincount(
        np.concatenate([lookup.rows[r].ravel() for r in ("view", "buy")]), minlength=len(ids)
    )
    rows = 2 * len(ids)  # both roles
    for q in (0, 7, 39):
        targets, base = plain.related(q, "buy")
        got = as_dict(dehubbed.related(q, "buy"))
        for t, s in zip(targets.tolist(), base.tolist(), strict=True):
            idf = np.log((rows + 1) / (held[t] + 1)) / np.log(rows + 1)
            assert got[t] == round(s * idf, 6)
    hub = int(np.argmax(held))
    assert held[hub] > len(ids)  # this catalog has a hub: in more rows than there are items
    hub_rows = [q for q in range(len(ids)) if hub in plain.related(q, "buy")[0].tolist()]
    assert all(
        as_dict(dehubbed.related(q, "buy"))[hub] < as_dict(plain.related(q, "buy"))[hub]
        for q in hub_rows
    )


def _random_rows(rng: np.random.Generator, n: int, share: float) -> Rows:
    targets: list[int] = []
    strengths: list[float] = []
    row_of: list[int] = []
    for q in range(n):
        if rng.random() < share:
            k = int(rng.integers(1, 15))
            targets += rng.choice(40, size=k, replace=False).tolist()
            # few distinct values: equal strengths and sums that round alike are common
            strengths += rng.random(k).round(int(rng.integers(1, 4))).tolist()
            row_of += [q] * k
    return (
        np.array(targets, dtype=np.int64),
        np.array(strengths, dtype=np.float64),
        np.array(row_of, dtype=np.int64),
    )


def _row(rows: Rows, q: int) -> dict[int, float]:
    at = rows[2] == q
    assert np.unique(rows[0][at]).size == int(at.sum())  # a target once per row
    return dict(zip(rows[0][at].tolist(), rows[1][at].tolist(), strict=True))


def test_the_batch_merge_gives_every_row_the_per_row_merge_values_bit_for_bit() -> None:
    """``related_many``'s merge (a search per co-occurrence entry) against the union-and-group
    merge ``related`` keeps: the same rows in the same order, each with the same targets and
    the same float strengths (only the order inside a row may differ)."""
    rng = np.random.default_rng(0)
    blend = BlendedRelations(CoOccurrence())
    merged_pairs = 0
    for _ in range(300):
        blend.lookup_weight = float(rng.choice([1.0, 0.5, 2.0, 0.3]))
        blend.cooccurrence_weight = float(rng.choice([1.0, 0.7, 3.0]))
        n = int(rng.integers(1, 12))
        learned, co = _random_rows(rng, n, 0.7), _random_rows(rng, n, 0.6)
        old = blend._merge(learned, co, n)
        new = blend._merge_rows(learned, co, n)
        assert new[2].tolist() == old[2].tolist()
        for q in range(n):
            assert _row(new, q) == _row(old, q)
        merged_pairs += learned[0].size + co[0].size - old[0].size  # pairs both sources held
    assert merged_pairs > 500  # the case that sums two sources really came up


def test_a_batch_read_merges_the_kept_lookup_rows_as_the_concatenated_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``related_many`` reads the lookup's kept rows in place (``merge_at``): the same rows,
    entry for entry, as ``_merge_rows`` over the concatenated rows (``_learned_rows``), over
    reads that add rows to the cache, repeat queries, change the lookup's version, and hold a
    target larger than any slot read so far."""
    monkeypatch.setattr(relation_kernels._scratch, "slots", np.full(16, -1, dtype=np.int32))
    rng = np.random.default_rng(7)
    cooc = CoOccurrence(top_k=6)
    for _ in range(400):
        cooc.observe(rng.choice(50, size=3, replace=False).tolist())
    table = {
        q: (rng.choice(60, size=int(rng.integers(0, 9)), replace=False).tolist(), [])
        for q in range(70)
    }
    lookup = Fixed({q: (t, [0.0] * len(t)) for q, (t, _) in table.items()})
    blend = BlendedRelations(cooc, lookup, lookup_weight=0.6, cooccurrence_weight=1.4, dehub=False)
    for step in range(60):
        if step == 30:
            lookup.table[3] = ([9, 4, 200_000], [0.0, 0.0, 0.0])  # beyond any slot so far
            lookup.version += 1
        queries = [(int(q), str(rng.choice(["view", "buy"]))) for q in rng.integers(0, 70, 12)]
        queries += [(3, "view")] if step >= 30 else []
        got = blend.related_many(queries)
        want = blend._merge_rows(
            blend._learned_rows(queries, None), cooc.related_many(queries), len(queries)
        )
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert 200_000 in got[0].tolist() and relation_kernels.current_slots().size > 200_000
