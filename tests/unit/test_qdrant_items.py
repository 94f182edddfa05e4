"""Qdrant `items`: target embeddings + keyword payload through Edge and qdrant-client local mode."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from stream.adapters.encoder import BUNDLED_MODEL_DIR, OnnxItemEncoder
from stream.adapters.qdrant_items import (
    EdgeItemIndex,
    ItemIndex,
    item_payload,
    sync_catalog,
)
from stream.adapters.qdrant_items_client import ClientItemIndex

CATALOG = [
    {
        "item_id": f"p{i}",
        "title": "Fluid Milk" if i % 2 else "Bananas",
        "attributes": {
            "category": ["Dairy", "Milk"] if i % 2 else ["Produce", "Fruit"],
            "brand": "Private",
            "price": 1.5 + i,
        },
        "flags": {"deal": i % 3 == 0, "new": i == 4},
    }
    for i in range(12)
]


@pytest.fixture(scope="module")
def targets() -> np.ndarray:
    return OnnxItemEncoder(BUNDLED_MODEL_DIR).embed(CATALOG)[2]


@pytest.fixture(params=["edge", "client"])
def index(
    request: pytest.FixtureRequest, tmp_path: Path, targets: np.ndarray
) -> Iterator[ItemIndex]:
    dim = targets.shape[1]
    idx: ItemIndex
    if request.param == "edge":
        idx = EdgeItemIndex(tmp_path / "items", dim)
    else:
        idx = ClientItemIndex(QdrantClient(":memory:"), dim)
    yield idx
    idx.close()


def test_payload_is_plain_keywords() -> None:
    payload = item_payload(CATALOG[3], available=0)
    assert payload == {
        "item_id": "p3",
        "category": ["Dairy", "Milk"],
        "stock": "out",
        "deal": "yes",
        "new": "no",
        "brand": "Private",
        "price": 4.5,
    }
    assert item_payload({"item_id": "bare"})["category"] == []


def test_sync_search_filter_stock_and_delete(index: ItemIndex, targets: np.ndarray) -> None:
    sync_catalog(index, CATALOG, targets, stock={"p1": 0})
    assert index.count() == 12
    assert index.search(targets[5], 1) == ["p5"]  # its own target embedding is nearest
    deals = index.search(targets[5], 12, {"deal": "yes"})
    assert sorted(deals) == sorted(f"p{i}" for i in range(12) if i % 3 == 0)
    assert index.search(targets[4], 12, {"new": "yes"}) == ["p4"]
    assert "p1" not in index.search(targets[1], 12, {"stock": "in"})
    index.set_stock("p1", 3)
    assert "p1" in index.search(targets[1], 12, {"stock": "in"})
    sync_catalog(index, [{**CATALOG[2], "deleted": True}], targets[2:3])
    assert index.count() == 11 and "p2" not in index.search(targets[2], 12)


def test_edge_items_survive_a_reopen(tmp_path: Path, targets: np.ndarray) -> None:
    first = EdgeItemIndex(tmp_path / "items", targets.shape[1])
    sync_catalog(first, CATALOG, targets)
    first.close()
    again = EdgeItemIndex(tmp_path / "items", targets.shape[1])
    try:
        assert again.count() == 12 and again.search(targets[7], 1) == ["p7"]
    finally:
        again.close()


def test_a_worker_on_the_embedded_default_never_imports_qdrant_client(tmp_path: Path) -> None:
    """qdrant-client's import is ~1.1 s of every worker's start-up; only a URL needs it."""
    code = (
        "import sys, pathlib\n"
        "import stream.worker, stream.app\n"
        "from stream.adapters.item_sync import make_item_index\n"
        "from stream.adapters.qdrant_sink import make_user_sink\n"
        f"root = pathlib.Path({str(tmp_path)!r})\n"
        "make_item_index(None, None, root, 8).close()\n"
        "make_user_sink(None, None, root, 8).close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('qdrant_client')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[]"
