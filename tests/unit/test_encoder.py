"""The committed ONNX item encoder through onnxruntime: parity with torch, batching, content."""

from __future__ import annotations

import numpy as np
import pytest

from stream.adapters.encoder import BUNDLED_MODEL_DIR, OUTPUTS, OnnxItemEncoder


@pytest.fixture(scope="module")
def encoder() -> OnnxItemEncoder:
    return OnnxItemEncoder(BUNDLED_MODEL_DIR)


def test_onnxruntime_matches_torch_outputs_saved_at_export(encoder: OnnxItemEncoder) -> None:
    parity = np.load(BUNDLED_MODEL_DIR / "parity.npz")
    got = encoder.run(parity["tokens"])
    for i, name in enumerate(OUTPUTS):
        assert got[i].shape == parity[name].shape
        assert np.abs(got[i] - parity[name]).max() <= 1e-5, name


ITEMS = [
    {
        "item_id": f"p{i}",
        "title": "Fluid Milk White" if i % 2 else "Bananas",
        "attributes": {"category": ["Dairy" if i % 2 else "Produce"], "brand": "Private"},
        "flags": {"deal": False, "new": False},
    }
    for i in range(37)
]


def test_batched_embedding_equals_one_batch_and_is_unit_norm(encoder: OnnxItemEncoder) -> None:
    small = encoder.embed(ITEMS, batch=5)
    whole = encoder.embed(ITEMS, batch=1000)
    assert small.shape == (3, len(ITEMS), encoder.dim)
    np.testing.assert_allclose(small, whole, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=2), 1.0, atol=1e-4)


def test_bare_item_gets_an_embedding_and_flags_do_not_move_it(encoder: OnnxItemEncoder) -> None:
    bare = encoder.embed([{"item_id": "no-attributes"}])
    assert np.isfinite(bare).all() and np.abs(bare).sum() > 0
    on_deal = [{**ITEMS[1], "flags": {"deal": True, "new": True}}]
    np.testing.assert_array_equal(encoder.embed(on_deal), encoder.embed(ITEMS[1:2]))


def test_three_roles_are_distinct_embeddings(encoder: OnnxItemEncoder) -> None:
    emb = encoder.embed(ITEMS[:4])
    assert not np.allclose(emb[0], emb[2]) and not np.allclose(emb[1], emb[2])
