"""The Qdrant `items` collection through qdrant-client: a server, or local mode in tests.

Apart from ``stream.adapters.qdrant_items`` so that a worker on the embedded default never imports
qdrant-client (~1.1 s of its start-up, measured with py-spy: pydantic building the client's
models). The payload, the point ids and the protocol are shared with the Edge index there.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from stream.adapters.qdrant_items import item_point_id


class ClientItemIndex:
    """Items in a qdrant-client collection (a server; local mode in tests)."""

    def __init__(self, client: QdrantClient, dim: int, collection: str = "items") -> None:
        self.client, self.dim, self.collection = client, dim, collection
        self._lock = threading.Lock()
        if not client.collection_exists(collection):
            client.create_collection(
                collection,
                vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            )

    def upsert(self, payloads: Sequence[Mapping[str, Any]], vectors: np.ndarray) -> None:
        points = [
            models.PointStruct(id=item_point_id(p["item_id"]), vector=v.tolist(), payload=dict(p))
            for p, v in zip(payloads, np.asarray(vectors, dtype=np.float32), strict=True)
        ]
        if points:
            with self._lock:
                self.client.upsert(self.collection, points=points, wait=True)

    def set_stock(self, item_id: str, available: int) -> None:
        with self._lock:
            self.client.set_payload(
                self.collection,
                payload={"stock": "in" if available > 0 else "out"},
                points=[item_point_id(item_id)],
                wait=True,
            )

    def delete(self, item_ids: Sequence[str]) -> None:
        if item_ids:
            ids: list[models.ExtendedPointId] = [item_point_id(i) for i in item_ids]
            with self._lock:
                self.client.delete(
                    self.collection, points_selector=models.PointIdsList(points=ids), wait=True
                )

    def search(
        self, vector: np.ndarray, k: int, where: Mapping[str, str] | None = None
    ) -> list[str]:
        conditions: list[models.Condition] = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in (where or {}).items()
        ]
        with self._lock:
            found = self.client.query_points(
                self.collection,
                query=np.asarray(vector, dtype=np.float32).tolist(),
                limit=k,
                query_filter=models.Filter(must=conditions) if conditions else None,
                with_payload=True,
            ).points
        return [str((p.payload or {}).get("item_id")) for p in found]

    def count(self) -> int:
        with self._lock:
            return int(self.client.count(self.collection, exact=True).count)

    def close(self) -> None:
        pass  # the client belongs to the caller
