"""Qdrant `items` collection: every item's target embedding with a filterable payload.

The same two back ends as `users`: an embedded Qdrant Edge shard (default, here) and
qdrant-client for a server (tests use local mode): ``stream.adapters.qdrant_items_client``,
imported only when a URL is set, as qdrant-client's import costs a worker ~1.1 s of start-up.
The lookup, not Qdrant, serves ranking (DESIGN.md: never search per event); the collection is
for ops, ad-hoc "X for you" queries and other services. Payload: ``item_id``, ``category``
(path), ``brand``, ``price``, ``stock`` ("in"/"out"), ``deal`` and ``new`` ("yes"/"no") —
keywords, because Edge 0.9's ``MatchValue(True)`` matches nothing on bools. A stock change
rewrites only the ``stock`` field; catalog changes re-upsert; deletions remove.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import qdrant_edge as qe

ITEM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "recstream:items")
KEYWORDS = ("item_id", "category", "brand", "stock", "deal", "new")


def item_point_id(item_id: str) -> str:
    return str(uuid.uuid5(ITEM_NAMESPACE, item_id))


def item_payload(message: Mapping[str, Any], available: int = 1) -> dict[str, Any]:
    """The payload of a catalog message (plain JSON types, keyword flags)."""
    attributes = message.get("attributes")
    attrs: Mapping[str, Any] = attributes if isinstance(attributes, Mapping) else {}
    flags = message.get("flags")
    fl: Mapping[str, Any] = flags if isinstance(flags, Mapping) else {}
    category = attrs.get("category")
    path = [category] if isinstance(category, str) else list(category or [])
    payload: dict[str, Any] = {
        "item_id": str(message["item_id"]),
        "category": [str(c) for c in path],
        "stock": "in" if available > 0 else "out",
        "deal": "yes" if fl.get("deal") else "no",
        "new": "yes" if fl.get("new") else "no",
    }
    if attrs.get("brand") is not None:
        payload["brand"] = str(attrs["brand"])
    price = attrs.get("price")
    if isinstance(price, int | float) and not isinstance(price, bool):
        payload["price"] = float(price)
    return payload


class ItemIndex(Protocol):
    dim: int

    def upsert(self, payloads: Sequence[Mapping[str, Any]], vectors: np.ndarray) -> None: ...

    def set_stock(self, item_id: str, available: int) -> None: ...

    def delete(self, item_ids: Sequence[str]) -> None: ...

    def search(
        self, vector: np.ndarray, k: int, where: Mapping[str, str] | None = None
    ) -> list[str]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


class EdgeItemIndex:
    """Items in a persistent Edge shard (cosine, keyword indexes on the payload flags)."""

    def __init__(self, path: Path, dim: int) -> None:
        self.dim = dim
        config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
        path = Path(path)
        if (path / "edge_config.json").exists():
            self._shard = qe.EdgeShard.load(str(path), config)
        else:
            path.mkdir(parents=True, exist_ok=True)
            self._shard = qe.EdgeShard.create(str(path), config)
        self._lock = threading.Lock()
        existing = self._shard.info().payload_schema
        for name in KEYWORDS:
            if name not in existing:
                self._shard.update(
                    qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword)
                )

    def upsert(self, payloads: Sequence[Mapping[str, Any]], vectors: np.ndarray) -> None:
        points = [
            qe.Point(item_point_id(p["item_id"]), v.tolist(), dict(p))
            for p, v in zip(payloads, np.asarray(vectors, dtype=np.float32), strict=True)
        ]
        if points:
            with self._lock:
                self._shard.update(qe.UpdateOperation.upsert_points(points))

    def set_stock(self, item_id: str, available: int) -> None:
        stock = {"stock": "in" if available > 0 else "out"}
        with self._lock:
            self._shard.update(qe.UpdateOperation.set_payload([item_point_id(item_id)], stock))

    def delete(self, item_ids: Sequence[str]) -> None:
        if item_ids:
            ids: list[qe.PointId] = [item_point_id(i) for i in item_ids]
            with self._lock:
                self._shard.update(qe.UpdateOperation.delete_points(ids))

    def search(
        self, vector: np.ndarray, k: int, where: Mapping[str, str] | None = None
    ) -> list[str]:
        conditions: list[Any] = [  # Edge stubs want the union of condition types
            qe.FieldCondition(key, match=qe.MatchValue(value))
            for key, value in (where or {}).items()
        ]
        request = qe.QueryRequest(
            query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()),
            limit=k,
            with_payload=True,
            filter=qe.Filter(must=conditions) if conditions else None,
        )
        with self._lock:
            found = self._shard.query(request)
        return [str((p.payload or {}).get("item_id")) for p in found]

    def count(self) -> int:
        with self._lock:
            return int(self._shard.count(qe.CountRequest(exact=True)))

    def close(self) -> None:
        with self._lock:
            self._shard.flush()
            self._shard.close()


def sync_catalog(
    index: ItemIndex,
    messages: Sequence[Mapping[str, Any]],
    targets: np.ndarray,
    stock: Mapping[str, int] | None = None,
) -> None:
    """Upsert catalog messages with their target embeddings (``targets`` (n, dim), one batch),
    remove deleted ones. ``stock`` gives current availability (default: in stock)."""
    stock = stock or {}
    live = [i for i, m in enumerate(messages) if not m.get("deleted")]
    gone = [str(m["item_id"]) for m in messages if m.get("deleted")]
    payloads = [item_payload(messages[i], stock.get(str(messages[i]["item_id"]), 1)) for i in live]
    index.upsert(payloads, targets[live])
    index.delete(gone)
