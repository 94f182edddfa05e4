"""The `ranking-profiles` topic's group consumer: accounting and dead letters, once per record.

Every worker's follower (``stream.adapters.profile_runtime``) reads every record and logs and
counts what it rejects, but dead-lettering there would write one dead letter per worker and per
restart. So, as for `catalog` and `stock`, a group-consumed agent sees each record once, checks
it with the same code, and dead-letters the invalid ones with their reason; its counters keep the
invariant ``consumed == processed + dead_lettered`` for this topic too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import orjson

from stream.adapters.codec import Envelope
from stream.adapters.profile_body import decode_record, parse_profile
from stream.adapters.validation import SchemaError
from stream.domain.profile_registry import build_live
from stream.pipeline import Pipeline
from stream.plan import BatchPlan, Record

log = logging.getLogger(__name__)


def check(key: bytes | None, value: bytes | None) -> tuple[str, str] | None:
    """(reason, error) if the record can never become a profile; None if it is usable (a
    tombstone is: it retracts a shadow). Versions are not judged here: whether a body is stale
    depends on what came before it, which only the followers know."""
    try:
        name, body = decode_record(key, value)
        if body is None:
            return None
        if name is not None and name != body.get("name"):
            return "key_mismatch", f"key {name!r} != name {body.get('name')!r}: key = profile name"
        build_live(body, parse_profile)
    except SchemaError as exc:
        return "schema_violation", str(exc)
    except ValueError as exc:
        text = str(exc)
        reason = "malformed_json" if "not valid JSON" in text else "invalid_profile"
        return reason, text
    return None


def profile_batch_handler(pipeline: Pipeline) -> Callable[[Sequence[Record]], Awaitable[None]]:
    """The agent's handler: count, dead-letter the invalid, deliver, like the item group."""
    metrics = pipeline.metrics

    async def handle(records: Sequence[Record]) -> None:
        plan = BatchPlan()
        for r in records:
            metrics.consumed.labels(r.topic).inc()
            problem = check(r.key, r.value)
            if problem is None:
                metrics.processed.labels(r.topic).inc()
                continue
            reason, error = problem
            env = Envelope(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp_ms)
            dead = env.dead(reason, error)
            metrics.dead_lettered.labels(r.topic, reason).inc()
            log.warning("dead letter %s[%d]@%d: %s: %s", r.topic, r.partition, r.offset, reason,
                        error[:200])  # fmt: skip
            plan.outputs.append(("dead-letters", r.key or b"", orjson.dumps(dead.to_message())))
        await pipeline.commit(plan)

    return handle
