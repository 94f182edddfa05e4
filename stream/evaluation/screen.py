"""Events a worker would dead-letter, set aside before an evaluation: counted, never lost.

A hand-made generic folder can hold messages the worker rejects (an order without lines, a
click without a user, an id that is not a string). The evaluator used to assume the worker's
schema and crashed deep in a replay with a bare ``KeyError`` (or, for an empty order, scored a
purchase of nothing against every method). Instead each user event is checked against its
topic's schema, as ingestion does, and the rejected ones are reported by topic with the first
few reasons (``consumed = evaluated + dead-lettered``). The full schema check costs ~0.1 ms an
event, too much for millions, so it only runs where a cheap check of what the evaluator reads
(ids, timestamps, order lines) fails; a schema-valid event is never dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.adapters.validation import SchemaError, get_validators
from stream.settings import USER_TOPICS

#: reasons quoted in the report (the counts cover them all)
EXAMPLES = 3


@dataclass
class Screened:
    """The events a worker would process, and what it would have dead-lettered."""

    events: list[dict[str, Any]]
    dead: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        if not self.dead:
            return []
        counts = ", ".join(f"{n} on {topic}" for topic, n in sorted(self.dead.items()))
        return [
            f"Dead-lettered before the evaluation ({counts}): these events do not match their "
            "topic's schema, and a worker would reject them. First reasons: "
            + "; ".join(self.examples)
        ]


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _readable(message: dict[str, Any]) -> bool:
    """What the evaluator reads of a user event is there (ids are non-empty strings, ts an
    integer, an order has lines each with an item id)."""
    if not (_is_id(message.get("event_id")) and _is_id(message.get("user_id"))):
        return False
    if not isinstance(message.get("ts"), int):
        return False
    if message["topic"] == "orders":
        lines = message.get("items")
        return (
            isinstance(lines, list)
            and bool(lines)
            and all(isinstance(line, dict) and _is_id(line.get("item_id")) for line in lines)
        )
    return "item_id" not in message or _is_id(message["item_id"])


def screen(events: Sequence[dict[str, Any]]) -> Screened:
    """Split ``events`` into those a worker accepts and counts of those it dead-letters."""
    validators = get_validators()
    checks = {topic: validators.validator(topic) for topic in USER_TOPICS if topic in validators}
    out = Screened([])
    for n, message in enumerate(events, 1):
        check = checks.get(message["topic"])
        if check is not None and not _readable(message):
            try:
                check(message)
            except SchemaError as exc:
                out.dead[message["topic"]] += 1
                if len(out.examples) < EXAMPLES:
                    out.examples.append(f"event {n}: {exc}")
                continue
        out.events.append(message)
    return out
