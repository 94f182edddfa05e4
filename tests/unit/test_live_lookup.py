"""LiveLookup: catalog messages keep the learned lookup fresh without a rebuild."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stream.adapters.encoder import BUNDLED_MODEL_DIR, OnnxItemEncoder
from stream.adapters.live_lookup import LiveLookup
from stream.domain import lookup_patch
from stream.domain.catalog import Catalog
from stream.domain.lookup import QueryTargetLookup


def item(i: int, deal: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "item_id": f"p{i}",
        "title": f"Thing {i}",
        "attributes": {"category": ["Dept", f"Cat {i % 4}"], "brand": f"b{i % 3}"},
        "flags": {"deal": deal, "new": False},
        **extra,
    }


@pytest.fixture(scope="module")
def encoder() -> OnnxItemEncoder:
    return OnnxItemEncoder(BUNDLED_MODEL_DIR)


def live(encoder: OnnxItemEncoder, n: int = 30) -> LiveLookup:
    msgs = [item(i) for i in range(n)]
    catalog = Catalog()
    for msg in msgs:
        catalog.upsert(msg)
    lookup = QueryTargetLookup([m["item_id"] for m in msgs], encoder.embed(msgs), k=10).build()
    return LiveLookup(encoder, lookup, catalog)


def test_flag_flip_costs_no_embedding_and_keeps_rows(encoder: OnnxItemEncoder) -> None:
    ll = live(encoder)
    before = ll.related(3, "buy")[0].tolist()
    ll.catalog.upsert(item(3, deal=True))
    assert ll.apply([item(3, deal=True)]) == 1  # first sight of p3's content in this object
    assert ll.apply([item(3, deal=False)]) == 0
    assert ll.related(3, "buy")[0].tolist() == before


def test_new_item_gets_rows_and_enters_rows_like_a_rebuild(encoder: OnnxItemEncoder) -> None:
    ll = live(encoder)
    new = item(30)
    ll.catalog.upsert(new)
    assert ll.apply([new]) == 1
    idx = ll.catalog.index["p30"]
    assert ll.lookup.ids[idx] == "p30" and ll.related(idx, "view")[0].size == 10
    msgs = [item(i) for i in range(31)]
    full = QueryTargetLookup([m["item_id"] for m in msgs], encoder.embed(msgs), k=10).build()
    for q in range(31):
        assert ll.related(q, "buy")[0].tolist() == full.related(q, "buy")[0].tolist()


def test_deleted_item_is_no_target_anymore(encoder: OnnxItemEncoder) -> None:
    ll = live(encoder)
    holders = [q for q in range(30) if 5 in ll.related(q, "view")[0].tolist()]
    assert holders
    gone = item(5, deleted=True)
    ll.catalog.upsert(gone)
    ll.apply([gone])
    assert all(5 not in ll.related(q, "view")[0].tolist() for q in range(30))


def test_catalog_items_unknown_to_the_lookup_are_embedded_from_the_catalog(
    encoder: OnnxItemEncoder,
) -> None:
    ll = live(encoder, n=20)
    for i in range(20, 25):  # arrived while the lookup was being built elsewhere
        ll.catalog.upsert(item(i))
    assert ll.apply([]) == 5
    assert len(ll.lookup) == 25 and ll.lookup.ids == ll.catalog.ids
    assert np.isfinite(ll.lookup.embeddings).all()
    assert ll.related(22, "buy")[0].size == 10


@pytest.mark.parametrize("share", [10.0, 0.0], ids=["journal", "rewrote most rows"])
def test_a_threaded_update_copies_once_for_room_then_writes_into_the_lookup_in_use(
    encoder: OnnxItemEncoder, share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first update with new items copies the lookup, with room for more; the next ones
    are staged and written into that copy (the same object; or, when the update rewrote most
    rows, as on this small lookup, a copy made in the thread): the rows an in-place update
    makes, a new version for the blend."""
    monkeypatch.setattr(lookup_patch, "COPY_SHARE", share)
    ll, twin = live(encoder), live(encoder)
    for step in (range(30, 33), range(33, 36)):
        msgs = [item(i) for i in step] + [item(4, brand="b9")]
        for target in (ll, twin):
            for msg in msgs:
                target.catalog.upsert(msg)
        in_use, version = ll.lookup, ll.version
        update = ll.prepare(msgs)
        ll.compute(update)  # (what the runtime's thread does)
        assert ll.lookup is in_use and len(in_use) == step.start  # nothing served yet
        ll.install(update)
        assert ll.version != version
        twin.apply(msgs)
        for q in range(len(twin.lookup)):
            for role in ("view", "buy"):
                assert ll.related(q, role)[0].tolist() == twin.related(q, role)[0].tolist()
        staged = step.start == 33 and share > 0
        assert isinstance(update.result, lookup_patch.StagedLookup) == staged
        assert (ll.lookup is in_use) == staged
    assert ll.lookup._capacity > len(ll.lookup)  # (room the first copy made)


def test_an_update_embeds_from_the_token_checks_rows_without_tokenising_again(
    encoder: OnnxItemEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    ll = live(encoder, n=20)
    for i in range(20, 23):  # catalog items the lookup never saw a message of
        ll.catalog.upsert(item(i))
    msgs = [item(i, brand="b7") for i in (2, 5, 23, 24)]
    for msg in msgs:
        ll.catalog.upsert(msg)
    update = ll.prepare(msgs)
    assert set(update.tokens) == {"p2", "p5", "p23", "p24"} and len(update.order) == 7
    calls: list[str] = []
    kind = type(encoder.tokenizer)  # (a frozen dataclass: patched on its class)
    real = kind.encode
    monkeypatch.setattr(kind, "encode", lambda self, m: calls.append(m["item_id"]) or real(self, m))
    ll.compute(update, in_place=True)
    assert sorted(calls) == ["p20", "p21", "p22"]  # only the ones rebuilt from the catalog
    monkeypatch.undo()
    rows = ll._token_rows(update)
    np.testing.assert_array_equal(rows, encoder.tokenizer.encode_many(update.messages))
    np.testing.assert_array_equal(
        encoder.embed(update.messages, tokens=rows), encoder.embed(update.messages)
    )
