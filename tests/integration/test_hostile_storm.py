"""A storm of 100k mixed messages through a live worker (issue 6, hostile input at scale).

Valid events (all six user topics, absurd-but-valid values, out-of-order and duplicate events,
strangers, erasure requests; events dated in the year 3000, dead-lettered as ``ts_ahead``, and
in seconds, as ``ts_seconds``) are
interleaved with every kind of nasty message from the unit corpus
(tests/unit/test_hostile_input.py). Afterwards, read from the worker's `/metrics`: every message
was consumed exactly once, ``consumed == processed + dead_lettered`` per topic, and each
dead-letter reason was counted exactly as often as that kind was sent. The worker is alive and
answers a fresh click from every valid user. (`ranking-profiles` is not in the storm: no worker
consumes it — profiles are loaded from a file at start, see stream/domain/ranking.py.)
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from stream.settings import CONTROL_TOPICS, USER_TOPICS
from stream.tools import TopicReader, produce
from tests.conftest import Deployment
from tests.integration.test_pipeline import CATALOG

pytestmark = pytest.mark.integration

#: STORM_N=20000 for a quick local run; the suite runs the 100k the issue asks for
TOTAL = int(os.environ.get("STORM_N", "100000"))
USERS = [f"storm-u{i}" for i in range(400)]
ITEM_IDS = [m["item_id"] for m in CATALOG]
NOW = int(time.time() * 1000)
FAR_FUTURE = 32_503_680_000_000  # year 3000
LIMIT = 64 * 1024  # Settings.max_message_bytes (default)

Raw = tuple[str, bytes | None, bytes | None]  # logical topic, key, value


class Storm:
    """Builds the message mix and counts what each message must become."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.messages: list[Raw] = []
        self.dead: collections.Counter[tuple[str, str]] = collections.Counter()
        self.sent: collections.Counter[str] = collections.Counter()
        self._ids = iter(range(10**9))

    def add(self, topic: str, key: bytes | None, value: bytes | None, reason: str = "") -> None:
        self.messages.append((topic, key, value))
        self.sent[topic] += 1
        if reason:
            self.dead[(topic, reason)] += 1

    def body(self, topic: str, user: str, ts: int | None = None, **extra: Any) -> dict[str, Any]:
        item = self.rng.choice(ITEM_IDS)
        body: dict[str, Any] = {
            "event_id": f"se-{next(self._ids)}",
            "user_id": user,
            "ts": NOW - self.rng.randrange(3_600_000) if ts is None else ts,
        }
        if topic in ("clicks", "dwell", "carts", "returns", "refresh"):
            body["item_id"] = item
        if topic == "dwell":
            body["dwell_ms"] = self.rng.randrange(100, 60_000)
        if topic == "carts":
            body["action"] = "add"
        if topic == "orders":
            body["items"] = [{"item_id": item, "quantity": 1, "price": 9.5}]
        if topic == "searches":
            body["query"] = "navy shoes"
            body["filters"] = {"colour": ["navy"], "in_stock": True}
        body.update(extra)
        return body

    def valid(self, topic: str, user: str, **extra: Any) -> dict[str, Any]:
        body = self.body(topic, user, **extra)
        self.add(topic, user.encode(), orjson.dumps(body))
        return body


def _valid_kinds(s: Storm, user: str) -> None:
    """One valid message, most of them ordinary, some absurd but within the schemas."""
    roll = s.rng.random()
    topic = s.rng.choice(("clicks",) * 4 + USER_TOPICS)
    if roll < 0.03:
        s.valid("dwell", user, dwell_ms=2**62)  # absurd dwell
    elif roll < 0.06:
        # dated in the year 3000: dead-lettered, as it would freeze decays (adapters.codec)
        body = s.body(topic, user, ts=FAR_FUTURE)
        s.add(topic, user.encode(), orjson.dumps(body), "ts_ahead")
    elif roll < 0.09:
        s.valid(topic, user, ts=1)  # far past
    elif roll < 0.12:
        s.valid(topic, user, ts=NOW - 10 * 86_400_000)  # out of order: older than its neighbours
    elif roll < 0.14:
        body = s.valid("clicks", user)
        s.add("clicks", user.encode(), orjson.dumps(body))  # the same event id again
    elif roll < 0.15:
        # seconds for milliseconds (a producer sending time.time()): January 1970 as ms
        body = s.body(topic, user, ts=NOW // 1000)
        s.add(topic, user.encode(), orjson.dumps(body), "ts_seconds")
    elif roll < 0.155:
        # a big value just under the size limit (extra properties are allowed)
        body = s.body("clicks", user)
        body["blob"] = "x" * (LIMIT - 200)
        s.add("clicks", user.encode(), orjson.dumps(body))
    else:
        s.valid(topic, user)


def _nan(s: Storm, user: str, value: bytes) -> bytes:
    """A dwell event whose number is NaN or Infinity (not JSON; orjson refuses it)."""
    body = orjson.dumps(s.body("dwell", user, dwell_ms=7))
    return body.replace(b'"dwell_ms":7', b'"dwell_ms":' + value)


#: Each nasty kind: (topic or None for any user topic, key override, value builder, reason).
NASTY: list[tuple[str | None, bytes | None, Any, str]] = [
    (None, None, lambda s, u: b"\xff\xfe\xfa not utf-8 " + bytes([s.rng.randrange(128, 256)]),
     "malformed_json"),
    (None, None, lambda s, u: b"[" * 1100 + b"]" * 1100, "malformed_json"),  # too deep
    ("dwell", None, lambda s, u: _nan(s, u, b"NaN"), "malformed_json"),
    ("dwell", None, lambda s, u: _nan(s, u, b"-Infinity"), "malformed_json"),
    ("dwell", None, lambda s, u: orjson.dumps(s.body("dwell", u, dwell_ms=-5)), "schema_violation"),
    ("clicks", None, lambda s, u: orjson.dumps(s.body("clicks", u, ts=-1)), "schema_violation"),
    ("carts", None, lambda s, u: orjson.dumps(s.body("carts", u, action=None)),
     "schema_violation"),
    ("orders", None, lambda s, u: orjson.dumps(s.body("orders", u, items=[])), "schema_violation"),
    (None, None, lambda s, u: orjson.dumps({"user_id": u, "ts": 1}), "schema_violation"),  # keys
    ("clicks", None, lambda s, u: orjson.dumps(s.body("clicks", u, item_id="no-such-sku")),
     "unknown_item"),
    ("clicks", b"someone-else", lambda s, u: orjson.dumps(s.body("clicks", u)), "key_mismatch"),
    (None, None, lambda s, u: None, "malformed_json"),  # a tombstone on an input topic
    (None, None, lambda s, u: s.rng.choice((b"42", b"[1, 2]", b'"text"', b"null")), "wrong_type"),
    ("forget", None, lambda s, u: orjson.dumps({"user_id": u}), "schema_violation"),
    ("forget", None, lambda s, u: orjson.dumps({"event_id": 5, "user_id": u, "ts": 1}),
     "wrong_type"),
    ("refresh", None, lambda s, u: orjson.dumps(s.body("refresh", u, event_id=3)), "wrong_type"),
    ("refresh", None, lambda s, u: orjson.dumps(s.body("refresh", u, item_id="gone")),
     "unknown_item"),
    ("clicks", None, lambda s, u: orjson.dumps({**s.body("clicks", u), "blob": "x" * LIMIT}),
     "oversize"),
]  # fmt: skip


def _hostile_kinds(s: Storm, user: str) -> None:
    """One nasty message, counted under the dead-letter reason it must get."""
    topic, key, build, reason = s.rng.choice(NASTY)
    s.add(topic or s.rng.choice(USER_TOPICS), key or user.encode(), build(s, user), reason)


def build_storm(total: int = TOTAL, hostile_share: float = 0.85) -> Storm:
    s = Storm()
    strangers = iter(range(10**9))
    forgotten = iter(range(10**9))
    while len(s.messages) < total:
        roll = s.rng.random()
        user = s.rng.choice(USERS)
        if roll < hostile_share:
            _hostile_kinds(s, user)
        elif roll < hostile_share + 0.01:
            s.valid("clicks", f"stranger-{next(strangers)}")  # unknown users: a fresh profile
        elif roll < hostile_share + 0.012:
            s.valid("forget", f"erased-{next(forgotten)}")  # erasure of a user never seen
        elif roll < hostile_share + 0.015:
            s.valid("refresh", user)  # a re-rank request (ignored when there is no profile)
        else:
            _valid_kinds(s, user)
    return s  # (the duplicate kind adds two: one or two more than ``total``)


def test_storm_builder_counts_every_message() -> None:
    """Guard for the test's own bookkeeping (no broker): counts add up and the mix is mixed."""
    s = build_storm(5_000)
    assert 5_000 <= len(s.messages) == s.sent.total()
    assert s.dead.total() < len(s.messages)
    reasons = {reason for _, reason in s.dead}
    assert reasons == {"malformed_json", "schema_violation", "unknown_item", "key_mismatch",
                       "wrong_type", "oversize", "ts_ahead", "ts_seconds"}  # fmt: skip
    assert set(s.sent) == set(USER_TOPICS + CONTROL_TOPICS)


def _counter(metrics: dict[str, float], name: str, topic: str) -> float:
    return metrics.get(f'recstream_{name}_total{{topic="{topic}"}}', 0.0)


def _dead(metrics: dict[str, float]) -> collections.Counter[tuple[str, str]]:
    out: collections.Counter[tuple[str, str]] = collections.Counter()
    for name, value in metrics.items():
        if name.startswith("recstream_dead_letters_total{"):
            labels = dict(part.split("=", 1) for part in name[name.index("{") + 1 : -1].split(","))
            out[(labels["topic"].strip('"'), labels["reason"].strip('"'))] += int(value)
    return out


def _chunks(messages: list[Raw], size: int) -> Iterator[list[Raw]]:
    for start in range(0, len(messages), size):
        yield messages[start : start + size]


# 85 % hostile (was 60 %: 3.6-4.6 min with the 2 cores shared by 5 busy agents; now ~1.9 min
# with one other agent busy). The worker's time goes to ranking the valid events, Kafka client
# I/O, and a catalog-replica round trip for each batch naming an unknown item (see README)
@pytest.mark.timeout(600)
def test_100k_storm_accounts_for_every_message(deployment: Deployment) -> None:
    storm = build_storm()
    total = len(storm.messages)
    deployment.produce([("catalog", m) for m in CATALOG])
    worker = deployment.worker("storm").start()
    worker.wait_ready()
    started = time.monotonic()
    for chunk in _chunks(storm.messages, 20_000):  # batched producer, acks awaited per chunk
        asyncio.run(produce(deployment.settings, [(t, (k, v)) for t, k, v in chunk], raw=True))
    produced_s = time.monotonic() - started
    topics = USER_TOPICS + CONTROL_TOPICS
    deadline = time.monotonic() + 480  # a stuck worker, not a slow one
    consumed = 0.0
    while time.monotonic() < deadline:
        metrics = worker.metrics()
        consumed = sum(_counter(metrics, "events_consumed", t) for t in topics)
        done = sum(_counter(metrics, "events_processed", t) for t in topics) + sum(
            n for (t, _), n in _dead(metrics).items() if t in topics
        )
        if consumed >= total and done >= consumed:
            break
        assert worker.process is not None and worker.process.poll() is None, worker.log()[-3000:]
        time.sleep(1.0)
    drained_s = time.monotonic() - started
    print(f"storm: {total} messages produced in {produced_s:.1f}s, consumed in {drained_s:.1f}s")
    metrics = worker.metrics()
    batches = metrics.get('recstream_batch_processing_seconds_count{agent="users"}', 0.0)
    busy = metrics.get('recstream_batch_processing_seconds_sum{agent="users"}', 0.0)
    print(f"storm: {batches:.0f} batches, {total / max(1.0, batches):.0f} messages each, "
          f"{busy:.1f}s in the users agent")  # fmt: skip
    dead = _dead(metrics)
    for topic in topics:
        consumed_t = _counter(metrics, "events_consumed", topic)
        processed_t = _counter(metrics, "events_processed", topic)
        dead_t = sum(n for (t, _), n in dead.items() if t == topic)
        assert consumed_t == storm.sent[topic], (topic, consumed_t, storm.sent[topic])
        assert consumed_t == processed_t + dead_t, (topic, consumed_t, processed_t, dead_t)
    assert {k: v for k, v in dead.items() if k[0] in topics} == dict(storm.dead)
    # alive, and every valid user (plus one stranger) is served a fresh list
    assert worker.process is not None and worker.process.poll() is None
    probe = Storm(seed=1)
    probes = [
        probe.body("clicks", u, event_id=f"probe-{u}", ts=NOW + 60_000)
        for u in [*USERS, "stranger-after-storm"]
    ]

    async def serve() -> dict[str, dict[str, Any]]:
        async with TopicReader(deployment.settings, "recommendations") as reader:
            await produce(deployment.settings, [("clicks", p) for p in probes])
            wanted = {p["event_id"] for p in probes}
            got: dict[str, dict[str, Any]] = {}
            limit = time.monotonic() + 120
            while wanted - got.keys() and time.monotonic() < limit:
                for message in await reader.poll(200):
                    if message["trigger"]["event_id"] in wanted:
                        got[message["trigger"]["event_id"]] = message
                reader.messages.clear()
            return got

    answers = asyncio.run(serve())
    missing = [p["user_id"] for p in probes if p["event_id"] not in answers]
    assert not missing, f"{len(missing)} users not served after the storm: {missing[:5]}"
    assert all(m["items"] for m in answers.values())
