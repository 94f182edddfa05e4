"""The search signals' inverted index, kept item by item from the catalog's change log."""

from __future__ import annotations

import numpy as np
import pytest

from stream.domain import catalog as catalog_module
from stream.domain.catalog import Catalog
from stream.domain.token_index import TokenIndex, token_index, tokens

WORDS = ["milk", "bread", "organic", "apple", "juice", "cheese", "whole", "grain"]


def _message(rng: np.random.Generator, item: str) -> dict[str, object]:
    title = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))).tolist())
    category = f"dairy/{rng.choice(['fresh milk', 'hard cheese', 'bakery bread'])}"
    return {
        "item_id": item,
        "title": title,
        "attributes": {"category": category, "price": float(rng.choice([1.0, 3.0, 9.0]))},
        "flags": {"deal": bool(rng.random() < 0.5)},
        "deleted": bool(rng.random() < 0.05),
    }


def _full(catalog: Catalog) -> TokenIndex:
    """A fresh index: built from the whole catalog at its first read."""
    return TokenIndex(catalog)


def _same(a: TokenIndex, b: TokenIndex) -> None:
    for word in {*WORDS, "fresh", "hard", "bakery", "dairy", "absent"}:
        assert a.items_with(word).tolist() == b.items_with(word).tolist(), word
    assert a.band_of_feature().tolist() == b.band_of_feature().tolist()


def test_updated_item_by_item_it_equals_a_full_build() -> None:
    rng = np.random.default_rng(4)
    c = Catalog()
    for i in range(200):
        c.upsert(_message(rng, f"i{i}"))
    kept = token_index(c)
    _same(kept, _full(c))
    for step in range(600):
        c.upsert(_message(rng, f"i{int(rng.integers(0, 260))}"))  # edits, and new items
        if step % 17 == 0:
            _same(kept, _full(c))
    _same(kept, _full(c))
    assert kept.items_with("milk").tolist() == sorted(kept.items_with("milk").tolist())


def test_an_edit_that_keeps_the_words_moves_no_posting() -> None:
    c = Catalog()
    c.upsert({"item_id": "a", "title": "Organic milk", "attributes": {"category": "dairy"}})
    c.upsert({"item_id": "b", "title": "Bread", "attributes": {"category": "bakery"}})
    index = token_index(c)
    milk = index.items_with("milk")
    c.upsert({"item_id": "a", "title": "Organic milk", "attributes": {"category": "dairy"},
              "flags": {"deal": True}})  # fmt: skip
    assert index.items_with("milk") is milk  # the array handed out before, not a rebuild
    c.upsert({"item_id": "a", "title": "Organic juice", "attributes": {"category": "dairy"}})
    assert index.items_with("milk").tolist() == []
    assert index.items_with("juice").tolist() == [0] and index.items_with("dairy").tolist() == [0]
    assert tokens("Organic, organic MILK!") == ["organic", "milk"]


def test_a_reader_the_change_log_left_behind_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog_module, "MAX_CHANGES", 8)
    rng = np.random.default_rng(9)
    c = Catalog()
    index = token_index(c)
    c.upsert(_message(rng, "i0"))
    index.items_with("milk")
    seen = c.change_position
    for i in range(30):
        c.upsert(_message(rng, f"i{i % 12}"))
    assert c.changed_since(seen) is None  # the log was cut
    assert c.changed_since(c.change_position) == []
    _same(index, _full(c))
