"""Decoded user events: the one shape the pure domain sees, whatever topic they came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class UserEvent:
    """A validated user event. ``source`` = (topic, partition, offset) makes replays detectable."""

    topic: str
    event_id: str
    user_id: str
    ts: int
    item_ids: tuple[str, ...] = ()
    quantities: tuple[int, ...] = ()
    action: str | None = None
    dwell_ms: int = 0
    filters: Mapping[str, Any] | None = None
    query: str | None = None
    source: tuple[str, int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: where a click happened (``clicks.context``: device, locale, source), for ranking
    context: Mapping[str, str] | None = None


#: ``clicks.context`` keys kept on the event (``query`` travels in ``UserEvent.query``)
CONTEXT_KEYS = ("device", "locale", "source")


def event_from_message(topic: str, msg: Mapping[str, Any]) -> UserEvent:
    """Build a UserEvent from a schema-valid message of a user topic (no further checks)."""
    if topic == "orders":
        lines = msg["items"]
        item_ids = tuple(str(line["item_id"]) for line in lines)
        quantities = tuple(int(line.get("quantity", 1) or 1) for line in lines)
    elif "item_id" in msg:
        item_ids = (str(msg["item_id"]),)
        # (a field only where its topic's schema types it: elsewhere any value gets through,
        # and ``int([None])`` raised in the decoder instead of making a dead letter)
        quantities = (int(msg.get("quantity", 1) or 1) if topic == "carts" else 1,)
    else:
        item_ids, quantities = (), ()
    context = msg.get("context")
    query = msg.get("query")
    where = None
    if isinstance(context, Mapping):
        if query is None:
            query = context.get("query")
        where = {k: v for k in CONTEXT_KEYS if isinstance(v := context.get(k), str)} or None
    return UserEvent(
        topic=topic,
        event_id=str(msg["event_id"]),
        user_id=str(msg["user_id"]),
        ts=int(msg["ts"]),
        item_ids=item_ids,
        quantities=quantities,
        action=msg.get("action"),
        dwell_ms=int(msg.get("dwell_ms", 0) or 0) if topic == "dwell" else 0,
        filters=msg.get("filters"),
        query=query if isinstance(query, str) else None,
        context=where,
    )
