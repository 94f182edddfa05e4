"""Embedded Qdrant Edge shard as the `users` sink (the default when no Qdrant URL is set).

Edge is Qdrant's Rust engine in-process and persists under the data dir, unlike qdrant-client's
local mode (a Python emulation with one SQLite commit per point). Measured quirk of 0.9.0: building
a ``Point`` converts the payload dict with the GIL held, ~5-8 µs per leaf whatever its length
(a list of 30 ids: ~230 µs), and the write holds the GIL too. So a point holds three scalars:
``user_id`` (keyword index), ``doc_json`` (the ranked list as one orjson string, ``item_ids``
included; ``get`` decodes it, so callers see the same dict as with the qdrant-client sink) and
``item_keys`` (the item ids as one string of ``item_key`` tokens under a whitespace full-text
index). Per point of 30 items (CPU): ``qe.Point`` ~17 µs (was ~230), the whole build ~63 µs
(was ~168), the write ~60 µs (was ~43: a text index costs a little more than a keyword one).
"Users whose list holds item X" is ``MatchText(item_key(X))`` on ``item_keys``, exact (see
``item_key``). Shards written before ``item_keys`` hold ``item_ids`` lists under a keyword index:
they load, read back the same, and ``users_holding`` also matches them until they are rewritten.
One process per shard: a second open of the same directory fails on the WAL lock ("WouldBlock").
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
    ITEM_KEYS_FIELD,
    RejectedPoints,
    UserPoint,
    item_ids_of,
    item_key,
    item_keys,
    point_id,
    stored_payload,
    vector_list,
)

#: Payload key of the JSON-encoded ranked list (json mode); named to avoid clashing with callers'.
DOC_FIELD = "doc_json"
#: Field of shards written before ITEM_KEYS_FIELD: a list of ids under a keyword index.
LEGACY_IDS_FIELD = "item_ids"
#: Whitespace tokens kept verbatim: item_key tokens are exact, so no folding, stemming or limits.
ITEM_KEYS_INDEX = qe.TextIndexParams(
    tokenizer=qe.TokenizerType.Whitespace, lowercase=False, phrase_matching=False
)


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
        indexes: dict[str, qe.PayloadSchemaType | qe.TextIndexParams] = {
            "user_id": qe.PayloadSchemaType.Keyword,
            ITEM_KEYS_FIELD: ITEM_KEYS_INDEX,
        }
        for name, schema in indexes.items():
            if name not in existing:
                self._shard.update(qe.UpdateOperation.create_field_index(name, schema))
        #: an old shard's points may still hold only the keyword-indexed id list
        self._legacy_ids = LEGACY_IDS_FIELD in existing

    def _point(self, p: UserPoint) -> qe.Point:
        vector = vector_list(p.vector, self.dim)
        if self.payload_json:
            ids = item_ids_of(p.payload)
            body = {**p.payload, "item_ids": ids}
            doc = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            payload = {"user_id": p.user_id, ITEM_KEYS_FIELD: item_keys(ids), DOC_FIELD: doc}
        else:
            payload = stored_payload(p)
            payload[ITEM_KEYS_FIELD] = item_keys(payload["item_ids"])
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
        stored.pop(ITEM_KEYS_FIELD, None)  # the sink's index field, not the caller's payload
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
        """Users whose stored list contains the item (text-indexed filter; ops, not hot path)."""
        flt = self.holding_filter(item_id)
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

    def holding_filter(self, item_id: str) -> qe.Filter:
        """Filter for "users whose list holds item_id" (exact), for scrolls and searches alike.

        On a shard from before ``item_keys`` it also matches the old keyword-indexed id lists.
        """
        condition = qe.FieldCondition(ITEM_KEYS_FIELD, match=qe.MatchText(item_key(item_id)))
        if not self._legacy_ids:
            return qe.Filter(must=[condition])
        legacy = qe.FieldCondition(LEGACY_IDS_FIELD, match=qe.MatchValue(item_id))
        return qe.Filter(should=[condition, legacy])

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
