"""Qdrant `users` sink: latest ranked list per user, written off the hot path.

Two adapters implement :class:`UserSink` — an embedded Qdrant Edge shard (the default, see
``qdrant_edge_sink``) and qdrant-client against a server (``qdrant_client_sink``). Workers never
call a sink per event: they hand points to the ``CoalescingWriter`` (``coalescing_writer``),
which keeps only the newest list per user and flushes batches from a thread every few
milliseconds, measuring the lag.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

#: Fixed namespace so every worker (and every restart) maps a user to the same point id.
USER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "recstream:users")
DEFAULT_DIM = 64
#: Payload fields the sinks index (keyword) so ops queries like "who holds item X" stay cheap.
#: The Edge sink indexes ``user_id`` only this way and ``item_ids`` as ITEM_KEYS_FIELD instead.
INDEXED_FIELDS: tuple[str, ...] = ("user_id", "item_ids")
#: Edge payload field: the user's item ids as one string of ``item_key`` tokens (text index).
ITEM_KEYS_FIELD = "item_keys"


@functools.lru_cache(maxsize=1 << 14)
def point_id(user_id: str) -> str:
    """Deterministic UUID5 for a user: Qdrant ids must be unsigned ints or UUIDs, not free text.
    Kept for the users seen lately: a SHA-1 and a UUID object were ~4 µs of every point, and a
    steady stream writes the same active users' points again and again."""
    return str(uuid.uuid5(USER_NAMESPACE, user_id))


@dataclass(slots=True)
class UserPoint:
    """One user's latest ranked list (payload) and dense representation (vector)."""

    user_id: str
    vector: Any  # list[float] or a 1-d numpy array; converted in the sink's thread
    payload: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class UserSink(Protocol):
    """Synchronous storage for user points; called from a worker thread, never per event.

    Both adapters also offer ``dim`` (vector size; the writer validates submits against it) and
    ``users_holding(item_id)`` (ops/tests); fakes may leave them out.
    """

    def upsert(self, points: Sequence[UserPoint]) -> None: ...

    def delete(self, user_ids: Sequence[str]) -> None: ...

    def get(self, user_id: str) -> dict[str, Any] | None: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


class RejectedPoints(ValueError):
    """Some points can never be written (bad vector, payload not JSON): the rest were written.

    Raised by ``UserSink.upsert`` after writing the good points, so one poisoned point cannot
    stall every other user's writes in an endless retry loop.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        sample = "; ".join(f"{u}: {e}" for u, e in itertools.islice(errors.items(), 3))
        super().__init__(f"{len(errors)} user point(s) rejected ({sample})")


def vector_list(vector: Any, dim: int) -> list[float]:
    """A plain, finite float list of the expected size (clients want lists; numpy is accepted)."""
    values = vector.tolist() if hasattr(vector, "tolist") else [float(v) for v in vector]
    if len(values) != dim:
        raise ValueError(f"user vector has {len(values)} dimensions, the sink expects {dim}")
    if not all(map(math.isfinite, values)):
        raise ValueError("user vector has NaN or infinite values")
    return values


def _ids_of(items: Any) -> Iterable[str]:
    if isinstance(items, list):
        for it in items:
            if isinstance(it, dict) and "item_id" in it:
                yield str(it["item_id"])
            elif isinstance(it, str):
                yield it


def item_ids_of(payload: dict[str, Any]) -> list[str]:
    """Flat item ids of a ranked-list payload, for the "who holds item X" keyword filter.

    `item_ids` is taken as given, else collected from ``items`` ([{item_id, …}]) and from
    ``feeds`` ({feed: {items: […]}} or {feed: […]}), de-duplicated in rank order.
    """
    given = payload.get("item_ids")
    if isinstance(given, list):
        return [str(i) for i in given]
    ids: dict[str, None] = dict.fromkeys(_ids_of(payload.get("items")))
    feeds = payload.get("feeds")
    if isinstance(feeds, dict):
        for feed in feeds.values():
            ids.update(
                dict.fromkeys(_ids_of(feed.get("items") if isinstance(feed, dict) else feed))
            )
    return list(ids)


@functools.lru_cache(maxsize=1 << 14)  # a list names the same popular items over and over
def item_key(item_id: str) -> str:
    """The full-text token of an item id: ``x`` + hex of its UTF-8 bytes + ``x``.

    Why: one string of these tokens is a ~10x cheaper Edge payload than a list of ids (each list
    leaf costs ~8 µs to convert, GIL held). Hex is injective and has no spaces, upper case or
    punctuation for a tokenizer to split or fold, and the ``x`` delimiters (never a hex digit)
    keep a match exact even where a text condition falls back to substring search: a query
    token can only line up with a whole stored token. To filter "users whose list holds item
    X", match ``item_key(X)`` as text on ITEM_KEYS_FIELD.
    """
    return f"x{item_id.encode().hex()}x"


def item_keys(item_ids: Iterable[str]) -> str:
    """ITEM_KEYS_FIELD's value: the ids' ``item_key`` tokens joined by single spaces."""
    return " ".join(map(item_key, item_ids))


def stored_payload(point: UserPoint) -> dict[str, Any]:
    """Payload as stored: the caller's payload plus `user_id` and a flat `item_ids` list."""
    payload = dict(point.payload)
    payload["user_id"] = point.user_id
    payload["item_ids"] = item_ids_of(point.payload)
    return payload


def make_user_sink(
    qdrant_url: str | None, api_key: str | None, data_dir: Path, dim: int = DEFAULT_DIM
) -> UserSink:
    """Edge shard under ``data_dir/qdrant-edge/users`` by default; a server when a URL is set;
    ``local://PATH`` selects qdrant-client's local mode."""
    if qdrant_url is None:
        from stream.adapters.qdrant_edge_sink import EdgeUserSink

        return EdgeUserSink(Path(data_dir) / "qdrant-edge" / "users", dim=dim)
    from stream.adapters.qdrant_client_sink import ClientUserSink

    if qdrant_url.startswith("local://"):
        # qdrant-client's local mode (same API as a server): the stand-in used by tests here,
        # since no Qdrant server runs on these machines. The writer calls from a thread.
        from qdrant_client import QdrantClient

        path = qdrant_url.removeprefix("local://")
        client = (
            QdrantClient(location=":memory:")
            if path in ("", ":memory:")
            else QdrantClient(path=path, force_disable_check_same_thread=True)
        )
        return ClientUserSink(client, dim=dim, owns_client=True)
    return ClientUserSink.from_url(qdrant_url, api_key, dim=dim)
