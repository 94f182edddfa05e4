"""Embedded Qdrant Edge shard as the `users` sink (the default when no Qdrant URL is set).

Edge is Qdrant's Rust engine in-process and persists under the data dir, unlike qdrant-client's
local mode (a Python emulation with one SQLite commit per point). Measured quirk of 0.9.0: building
a ``Point`` converts the payload dict with the GIL held at ~3 µs per string leaf (~1 µs per int,
~0.15 µs per bool), so a 20-item ranked list with reasons costs ~350 µs/point to convert against
~15-50 µs to write. By default the sink therefore stores the ranked list as one orjson string
(``doc_json``) next to the filterable ``user_id`` and ``item_ids`` fields: ~100 µs/point in all.
``get`` decodes it, so callers see the same dict as with the qdrant-client sink. One process per
shard: a second open of the same directory fails on the WAL lock ("WouldBlock").
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import qdrant_edge as qe

from stream.adapters.qdrant_sink import (
    DEFAULT_DIM,
    INDEXED_FIELDS,
    RejectedPoints,
    UserPoint,
    item_ids_of,
    point_id,
    stored_payload,
    vector_list,
)

#: Payload key of the JSON-encoded ranked list (json mode); named to avoid clashing with callers'.
DOC_FIELD = "doc_json"


def _holds_shard(path: Path) -> bool:
    """A directory already initialised by EdgeShard.create (create refuses to run there)."""
    if (path / "edge_config.json").exists():
        return True
    segments = path / "segments"
    return segments.is_dir() and any(segments.iterdir())


class EdgeUserSink:
    """One point per user in a persistent Edge shard (cosine, keyword indexes on user/item ids)."""

    def __init__(self, path: Path, dim: int = DEFAULT_DIM, *, payload_json: bool = True) -> None:
        self.path = Path(path)
        self.dim = dim
        #: True: ranked list stored as one JSON string (fast); False: as structured payload.
        self.payload_json = payload_json
        config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine))
        if _holds_shard(self.path):
            # Passing the config makes Edge check it: a dimension mismatch fails here, loudly.
            self._shard = qe.EdgeShard.load(str(self.path), config)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._shard = qe.EdgeShard.create(str(self.path), config)
        # The shard is thread-safe, but one lock keeps close() from racing a flush in a thread.
        self._lock = threading.Lock()
        self._closed = False
        existing = self._shard.info().payload_schema
        for name in INDEXED_FIELDS:
            if name not in existing:
                self._shard.update(
                    qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword)
                )

    def _point(self, p: UserPoint) -> qe.Point:
        vector = vector_list(p.vector, self.dim)
        if self.payload_json:
            doc = orjson.dumps(p.payload, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            payload = {"user_id": p.user_id, "item_ids": item_ids_of(p.payload), DOC_FIELD: doc}
        else:
            payload = stored_payload(p)
        return qe.Point(point_id(p.user_id), vector, payload)

    def upsert(self, points: Sequence[UserPoint]) -> None:
        """One batched update (single-point updates cost ~7x more per point).

        Points that cannot be converted are left out and reported with RejectedPoints after the
        rest is written.
        """
        batch: list[qe.Point] = []
        rejected: dict[str, str] = {}
        for p in points:
            try:
                batch.append(self._point(p))
            except (TypeError, ValueError, OverflowError) as exc:
                rejected[p.user_id] = f"{type(exc).__name__}: {exc}"
        if batch:
            with self._lock:
                self._shard.update(qe.UpdateOperation.upsert_points(batch))
        if rejected:
            raise RejectedPoints(rejected)

    def delete(self, user_ids: Sequence[str]) -> None:
        if not user_ids:
            return
        ids: list[qe.PointId] = [point_id(u) for u in user_ids]
        with self._lock:
            self._shard.update(qe.UpdateOperation.delete_points(ids))

    def get(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            records = self._shard.retrieve([point_id(user_id)], True, False)
        if not records:
            return None
        stored = dict(records[0].payload or {})
        doc = stored.pop(DOC_FIELD, None)
        if isinstance(doc, str):  # json mode: unpack the ranked list to the caller's shape
            payload: dict[str, Any] = orjson.loads(doc)
            payload.update(stored)
            return payload
        return stored

    def count(self) -> int:
        with self._lock:
            return int(self._shard.count(qe.CountRequest(exact=True)))

    def users_holding(self, item_id: str, limit: int = 10_000) -> list[str]:
        """Users whose stored list contains the item (keyword-indexed filter; ops, not hot path)."""
        flt = qe.Filter(must=[qe.FieldCondition("item_ids", match=qe.MatchValue(item_id))])
        users: list[str] = []
        offset: qe.PointId | None = None
        while len(users) < limit:
            request = qe.ScrollRequest(
                offset=offset,
                limit=min(1000, limit - len(users)),
                filter=flt,
                with_payload=["user_id"],
                with_vector=False,
            )
            with self._lock:
                records, offset = self._shard.scroll(request)
            users.extend(str((r.payload or {}).get("user_id")) for r in records)
            if offset is None or not records:
                break
        return users

    def flush(self) -> None:
        """Persist segments now (the WAL already covers crashes between flushes)."""
        with self._lock:
            if not self._closed:
                self._shard.flush()

    def close(self) -> None:
        """Flush and release the shard (and its WAL lock); safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._shard.flush()
            finally:
                self._shard.close()
