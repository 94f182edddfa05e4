"""Versioned lookup files: round trip, pointer, pruning, hot reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream.adapters import lookup_store
from stream.domain.lookup import QueryTargetLookup


def make(n: int, seed: int, hub_k: int = 0) -> QueryTargetLookup:
    emb = np.random.default_rng(seed).standard_normal((3, n, 6)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=2, keepdims=True)
    return QueryTargetLookup([f"i{j}" for j in range(n)], emb, k=4, hub_k=hub_k).build()


def test_round_trip_keeps_rows_embeddings_and_removals(tmp_path: Path) -> None:
    lookup = make(25, 0, hub_k=8)
    lookup.remove(["i3"])
    lookup_store.save(lookup, tmp_path / "v1.npz")
    back = lookup_store.load(tmp_path / "v1.npz")
    assert back.ids == lookup.ids and back.k == 4
    assert not back.active[3]
    for idx in range(25):
        for role in ("view", "buy"):
            assert back.related(idx, role)[0].tolist() == lookup.related(idx, role)[0].tolist()
            np.testing.assert_array_equal(back.related(idx, role)[1], lookup.related(idx, role)[1])
    assert back.hub_k == lookup.hub_k > 0
    for role in ("view", "buy"):  # the hubness r(t) the rows were ranked by comes back too
        np.testing.assert_array_equal(back.hub[role], lookup.hub[role])
        np.testing.assert_array_equal(back.near[role], lookup.near[role])
    back.upsert(["i25"], lookup.embeddings[:, :1])  # a loaded lookup stays incremental
    lookup.upsert(["i25"], lookup.embeddings[:, :1])
    for idx in range(26):
        assert back.related(idx, "buy")[0].tolist() == lookup.related(idx, "buy")[0].tolist()


def test_a_format_1_file_loads_as_raw_cosine_rows(tmp_path: Path) -> None:
    """Files published before hub-aware rows hold raw cosine scores and no hubness."""
    raw = make(12, 3)
    lookup_store.save(raw, tmp_path / "v1.npz")
    with np.load(tmp_path / "v1.npz") as data:
        old = {n: data[n] for n in data.files if not n.startswith(("hub", "near"))}
    old["format"] = np.asarray(1)
    np.savez(tmp_path / "v2.npz", **old)  # type: ignore[arg-type]
    back = lookup_store.load(tmp_path / "v2.npz")
    assert back.hub_k == 0
    for idx in range(12):
        assert back.related(idx, "view")[0].tolist() == raw.related(idx, "view")[0].tolist()
        np.testing.assert_array_equal(back.related(idx, "view")[1], raw.related(idx, "view")[1])


def test_publish_bumps_version_moves_pointer_and_prunes(tmp_path: Path) -> None:
    assert lookup_store.load_current(tmp_path) is None
    paths = [lookup_store.publish(make(10, s), tmp_path) for s in range(5)]
    assert [p.name for p in paths] == [f"v{i}.npz" for i in range(1, 6)]
    assert lookup_store.current_path(tmp_path) == paths[-1]
    assert lookup_store.versions(tmp_path) == [3, 4, 5]


def test_reloader_returns_each_new_version_once(tmp_path: Path) -> None:
    reloader = lookup_store.LookupReloader(tmp_path)
    assert reloader.poll() is None
    lookup_store.publish(make(8, 1), tmp_path)
    first = reloader.poll()
    assert first is not None and len(first) == 8
    assert reloader.poll() is None
    lookup_store.publish(make(12, 2), tmp_path)
    second = reloader.poll()
    assert second is not None and len(second) == 12
