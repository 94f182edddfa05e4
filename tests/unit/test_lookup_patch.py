"""A staged lookup update: computed beside the lookup in use, whose rows stay as they were until
``install`` writes it in; then the same lookup as the update made in place, value for value."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from stream.domain import lookup_patch, lookup_updates
from stream.domain.lookup import ROLES, QueryTargetLookup
from tests.unit.test_lookup_ivf import grouped, names, scattered
from tests.unit.test_lookup_updates import changed

Update = Callable[[QueryTargetLookup], None]
ROW_BUFFERS = ("rows", "sims", "strengths", "lengths")


def roomy(emb: np.ndarray, n: int, room: int, **attrs: int) -> QueryTargetLookup:
    """A built lookup of the first ``n`` items with buffers for ``room`` (a worker's after
    its first copy), ``attrs`` set on it (``exact_max``, ``max_recompute``)."""
    lookup = QueryTargetLookup(names(n), emb[:, :n].copy(), k=10).build().copy(capacity=room)
    for name, value in attrs.items():
        setattr(lookup, name, value)
    return lookup


def snapshot(lookup: QueryTargetLookup) -> dict[str, np.ndarray]:
    out = {f"{b}_{r}": getattr(lookup, b)[r].copy() for b in ROW_BUFFERS for r in ROLES}
    return out | {"embeddings": lookup.embeddings.copy(), "active": lookup.active.copy()}


def assert_same(a: QueryTargetLookup, b: QueryTargetLookup) -> None:
    assert a.ids == b.ids and dict(a.index) == dict(b.index) and a.version == b.version
    left, right = snapshot(a), snapshot(b)
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)
    for part in lookup_updates.PARTS:
        np.testing.assert_array_equal(a.labels[part], b.labels[part], err_msg=part)
    assert set(a.centroids) == set(b.centroids)


def arrive_and_change(emb: np.ndarray, n: int, batch: list[int]) -> Update:
    """Items ``n..`` arrive, then the items ``batch`` change (two upserts)."""

    def update(lookup: QueryTargetLookup) -> None:
        lookup.upsert(names(emb.shape[1])[n:], emb[:, n:])
        lookup.upsert([f"i{p}" for p in batch], changed(emb, np.asarray(batch), 0.3))

    return update


def arrive_then_go(emb: np.ndarray, n: int, gone: list[str]) -> Update:
    """Items ``n..`` arrive, then ``gone`` are deleted: among them new ones, whose removal
    must find the rows they entered (journaled, not in the lookup's buffers yet)."""

    def update(lookup: QueryTargetLookup) -> None:
        lookup.upsert(names(emb.shape[1])[n:], emb[:, n:])
        lookup.remove(gone)

    return update


SMALL = scattered(260, d=8)
LARGE = grouped(1500, groups=40)
CASES: dict[str, tuple[Callable[[], QueryTargetLookup], Update]] = {
    "a few changes and new items": (
        lambda: roomy(SMALL, 240, 300),
        arrive_and_change(SMALL, 240, [3, 50, 51]),
    ),
    "new items then some of them deleted": (
        lambda: roomy(SMALL, 240, 300),
        arrive_then_go(SMALL, 240, ["i245", "i250", "i7"]),
    ),
    "a large batch through the query lists": (
        lambda: roomy(LARGE, 1100, 1600),
        arrive_and_change(LARGE, 1100, list(range(0, 1100, 11))),
    ),
    "above exact_max: rows from the target lists": (
        lambda: roomy(LARGE, 1100, 1600, exact_max=0),
        arrive_and_change(LARGE, 1100, list(range(0, 1100, 5))),
    ),
    "rows cut short by a release, then merged into": (
        lambda: roomy(SMALL, 240, 300, max_recompute=8),
        arrive_and_change(SMALL, 240, [3, 50, 51, 90]),
    ),
    "a large batch into rows cut short (free_merge)": (
        lambda: roomy(LARGE, 1100, 1600, max_recompute=8),
        arrive_and_change(LARGE, 1100, list(range(0, 1100, 4))),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_staged_update_leaves_the_rows_in_use_then_installs_what_in_place_makes(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookup_patch, "COPY_SHARE", 10.0)  # (these small ones rewrite most rows)
    make, update = CASES[case]
    in_place, base = make(), make()
    update(in_place)
    before = {k: v for k, v in snapshot(base).items() if not k.startswith(("emb", "act"))}
    staged = lookup_patch.stage(base, new=len(in_place) - len(base))
    assert staged is not None
    update(staged)
    assert staged.journal  # it wrote rows: into its journal
    assert len(base) == len(before["rows_view"]) and in_place.ids[-1] not in base.index
    for name, rows in before.items():  # what ranking reads: as it was
        np.testing.assert_array_equal(snapshot(base)[name], rows, err_msg=name)
    assert lookup_patch.install(staged) is base
    assert_same(base, in_place)


@pytest.mark.parametrize("share", [0.0, 0.3])
@pytest.mark.parametrize(
    "case", ["a few changes and new items", "rows cut short by a release, then merged into"]
)
def test_a_stage_whose_journal_passes_the_share_turns_into_a_copy(
    case: str, share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At its first write (share 0) or on the way (journal and copy then both written into),
    it leaves the lookup in use as it was and hands over a plain lookup: the in-place one."""
    monkeypatch.setattr(lookup_patch, "COPY_SHARE", share)
    make, update = CASES[case]
    in_place, base = make(), make()
    update(in_place)
    before = snapshot(base)["rows_view"]
    staged = lookup_patch.stage(base, new=len(in_place) - len(base))
    assert staged is not None
    update(staged)
    assert staged.detached and not staged.journal
    with pytest.raises(ValueError, match="swapped in"):
        lookup_patch.install(staged)
    settled = lookup_patch.settled(staged)
    assert type(settled) is QueryTargetLookup and settled._capacity == base._capacity
    assert not {"base", "journal", "_sorted", "touched", "added"} & set(vars(settled))
    np.testing.assert_array_equal(base.rows["view"], before)  # the lookup in use: as it was
    assert_same(settled, in_place)


def test_a_journal_past_its_byte_limit_turns_into_a_copy_whatever_the_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lookup_patch, "COPY_SHARE", 10.0)
    monkeypatch.setattr(lookup_patch, "JOURNAL_MAX", 4096)
    make, update = CASES["a few changes and new items"]
    in_place, base = make(), make()
    update(in_place)
    staged = lookup_patch.stage(base, new=len(in_place) - len(base))
    assert staged is not None and staged.limit == 4096
    update(staged)
    assert staged.detached and staged.journal_bytes > 4096
    assert_same(lookup_patch.settled(staged), in_place)


def test_the_cut_case_depends_on_reading_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``_kth`` and ``_held`` guard: a stage reading the lookup's own rows under its
    writes would merge new targets into the cut rows against their old K-th."""
    monkeypatch.setattr(lookup_patch, "COPY_SHARE", 10.0)
    make, update = CASES["rows cut short by a release, then merged into"]
    in_place, base = make(), make()
    update(in_place)
    staged = lookup_patch.stage(base, new=len(in_place) - len(base))
    assert staged is not None
    blind = lookup_patch.StagedLookup
    staged.__class__ = type("Blind", (blind,), {"_kth": QueryTargetLookup._kth})
    update(staged)
    lookup_patch.install(staged)
    assert any(not np.array_equal(base.rows[r], in_place.rows[r]) for r in ROLES)


def test_a_hub_aware_lookup_or_one_without_room_is_copied() -> None:
    hub = QueryTargetLookup(names(40), SMALL[:, :40].copy(), k=5, hub_k=5).build()
    assert lookup_patch.stage(hub.copy(capacity=100), new=3) is None
    full = QueryTargetLookup(names(40), SMALL[:, :40].copy(), k=5).build()
    assert lookup_patch.stage(full, new=0) is not None
    assert lookup_patch.stage(full, new=1) is None
    room = lookup_patch.capacity_for(full, new=1)
    assert room == 41 + lookup_patch.SPARE_MIN
    assert lookup_patch.stage(full.copy(capacity=room), new=lookup_patch.SPARE_MIN + 1) is not None


def test_the_summary_counts_the_rows_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookup_patch, "COPY_SHARE", 10.0)
    make, update = CASES["a few changes and new items"]
    staged = lookup_patch.stage(make(), new=20)
    assert staged is not None
    update(staged)
    summary = lookup_patch.summary(staged)
    assert all(summary["rows"][r] >= 20 for r in ROLES)  # (at least the new items' own)
    assert summary["journal_bytes"] > 20 * 10 * 8 and not summary["copied"]
