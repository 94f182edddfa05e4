"""What the engine learns from everyone's events (popularity, item relations), applied once.

Learned read models must outlive a worker and be the same on every worker, so each applied user
event yields an ``Observation`` (pure data) that the worker publishes on the `learned` topic; every
worker follows that topic from the beginning and folds what it reads into its read models. The
worker that made an observation applies it itself as well, once its batch is ranked
(``Engine.learning_held``), so its next list does not wait for a round trip. ``Learner`` makes
both paths idempotent per source event:

* observations carry the (topic, partition, offset) of the event they came from; one source
  partition is owned by one worker at a time and published in offset order to one `learned`
  partition, so "highest offset seen on the topic" per source partition detects duplicates;
* offsets applied locally but not yet read back are remembered until their echo arrives, so the
  echo is skipped — while an older observation from a previous owner of that partition (after a
  rebalance) is still applied even if it arrives later than a newer local one.

The offline evaluator has no offsets (``source is None``): its observations always apply.

What an observation says depends on the user's events, not on the order they arrived in (Kafka
orders one user's events only within a topic): its co-occurrence ``pairs`` come from
``stream.domain.pairing`` and its repeat ``flags`` from ``stream.domain.first_seen``, both decided
by event time, with late events correcting what earlier observations counted.

Format on `learned`: orjson with short keys. Version 2 adds ``p`` (pairs, ``[earlier, later,
weight]``) and the flags ``r``/``x``/``y``; version-1 messages (no ``p``; ``c`` a list of context
items paired with every item at the observation's weight) are still read and applied as before.
Version 3 (``learned_records``) groups a batch's consecutive observations of one source
partition into one record, ``{"g": [observation, ...]}``, in offset order: a record costs the
producer, the broker and every worker that follows the topic far more than its ~141 bytes, and
a drained backlog held one record per event. A group of one is written in version 2, as is
everything when the group size is 1 (what older workers read during a rolling upgrade).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from stream.domain.catalog import Catalog
from stream.domain.first_seen import FLAGS
from stream.domain.learned import RepeatModel
from stream.domain.relations import CoOccurrence, RelatedItems
from stream.domain.signals import category_of
from stream.domain.trending import Trending

#: Popularity credit per event type (cold-start ranking).
POPULARITY_WEIGHT = {"clicks": 1.0, "dwell": 0.5, "carts": 2.0, "orders": 3.0}


@dataclass(frozen=True, slots=True)
class Observation:
    """One applied event as the shared read models see it (item ids, not worker-local indexes)."""

    source: tuple[str, int, int] | None
    items: tuple[str, ...]
    context: tuple[str, ...]
    weight: float
    topic: str = "clicks"
    ts: int = 0
    #: per item, what the event changes in the repeat propensities (``stream.domain.first_seen``)
    flags: str = ""
    #: co-occurrence between this event's items and the user's other events, earlier → later,
    #: with weights (negative: a pair this event separated; see ``stream.domain.pairing``)
    pairs: tuple[tuple[str, str, float], ...] = ()

    @property
    def source_key(self) -> str | None:
        """Kafka key on `learned`: one source partition's observations stay in order."""
        return None if self.source is None else f"{self.source[0]}:{self.source[1]}"

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "s": list(self.source) if self.source else None,
                "i": self.items,
                "c": self.context,
                "w": self.weight,
                "t": self.topic,
                "ts": self.ts,
                "f": self.flags,
                "p": self.pairs,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Observation:
        """Raises ValueError/KeyError/TypeError on a message that is not an observation."""
        return cls.from_dict(orjson.loads(raw))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Observation:
        """One decoded observation (version 1 or 2); ValueError/KeyError/TypeError if not."""
        src = d["s"]
        source = None if src is None else (str(src[0]), int(src[1]), int(src[2]))
        items = tuple(str(i) for i in d["i"])
        context = tuple(str(i) for i in d["c"])
        flags = str(d.get("f", ""))
        if len(flags) not in (0, len(items)) or set(flags) - set(FLAGS):
            raise ValueError(f"bad repeat flags {flags!r}")
        pairs = tuple((str(a), str(b), float(w)) for a, b, w in d.get("p", ()))
        return cls(
            source,
            items,
            context,
            float(d["w"]),
            str(d.get("t", "clicks")),
            int(d.get("ts", 0)),
            flags,
            pairs,
        )


#: the key of a version-3 `learned` record: the list of the observations it groups
GROUP = "g"
#: observations per grouped record by default (``Settings.learned_group_max`` sets it)
GROUP_MAX = 64
#: a grouped record stays under this many bytes (Kafka's default limit is ~1 MB; a 256-event
#: batch from one source partition is ~36 KB at ~141 bytes an observation)
GROUP_MAX_BYTES = 64 * 1024


def learned_records(
    observations: Iterable[Observation],
    max_group: int = GROUP_MAX,
    max_bytes: int = GROUP_MAX_BYTES,
) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` records for `learned`: the observations in source-offset order, each
    run of one source partition in records of up to ``max_group`` observations (and about
    ``max_bytes``). Same key, same order as one record each: readers de-duplicate per
    observation exactly as before."""
    records: list[tuple[bytes, bytes]] = []
    key, size = "", 0
    parts: list[bytes] = []
    for obs in sorted(observations, key=lambda o: o.source or ("", 0, 0)):
        raw, k = obs.to_bytes(), obs.source_key or ""
        if parts and (k != key or len(parts) >= max_group or size + len(raw) > max_bytes):
            records.append(_record(key, parts))
            parts, size = [], 0
        key = k
        parts.append(raw)
        size += len(raw) + 1
    if parts:
        records.append(_record(key, parts))
    return records


def _record(key: str, parts: list[bytes]) -> tuple[bytes, bytes]:
    if len(parts) == 1:
        return key.encode(), parts[0]
    return key.encode(), b'{"' + GROUP.encode() + b'":[' + b",".join(parts) + b"]}"


def observations_from_bytes(
    raw: bytes, skip: Callable[[Any], bool] | None = None
) -> list[Observation]:
    """The observations of one `learned` record, grouped (version 3) or not; raises
    ValueError/KeyError/TypeError on a record that is not one (the whole record).

    ``skip(source)`` is asked first with each observation's raw ``s`` field: True leaves it out
    undecoded (a worker reading back its own observations, ``Learner.own_echo``: its share of
    the topic, all of it with one worker; ~3 % of a draining worker's CPU when each was decoded
    only to be dropped)."""
    d = orjson.loads(raw)
    if not isinstance(d, dict):
        raise TypeError(f"not an observation: {type(d).__name__}")
    group = d.get(GROUP)
    if group is None:
        group = [d]
    elif not isinstance(group, list) or not all(isinstance(o, dict) for o in group):
        raise TypeError("a grouped observation record must hold a list of objects")
    if skip is not None:
        group = [o for o in group if not skip(o.get("s"))]
    return [Observation.from_dict(o) for o in group]


def observation_weight(topic: str, action: str | None) -> float:
    """Popularity/relation credit of an event; 0 = teaches nothing shared."""
    if topic == "carts" and action not in ("add", "favorite"):
        return 0.0
    return POPULARITY_WEIGHT.get(topic, 0.0)


class Learner:
    """Applies observations to the catalog's popularity and the item relations, once each."""

    def __init__(
        self,
        catalog: Catalog,
        relations: RelatedItems,
        repeats: RepeatModel | None = None,
        trending: Trending | None = None,
    ) -> None:
        self.catalog = catalog
        self.relations = relations
        self.repeats = repeats
        self.trending = trending
        self._category_of = category_of(catalog)
        #: per source partition: highest offset read back from the `learned` topic
        self.seen: dict[str, int] = {}
        #: per source partition: offsets applied locally whose echo has not been read yet
        self.pending: dict[str, set[int]] = {}
        self.applied = 0
        self.duplicates = 0

    def local(self, obs: Observation) -> bool:
        """The observing worker applies its own observation now; False if already applied."""
        key = obs.source_key
        if key is None or obs.source is None:
            self._apply(obs)
            return True
        offset = obs.source[2]
        pending = self.pending.setdefault(key, set())
        if offset <= self.seen.get(key, -1) or offset in pending:
            self.duplicates += 1
            return False
        pending.add(offset)
        self._apply(obs)
        return True

    def own_echo(self, source: Any) -> bool:
        """Is ``source``, an observation's raw ``[topic, partition, offset]``, one this worker
        applied itself and has not read back yet? If so it is read back now, as ``remote``
        would (the offset seen, no longer pending), without decoding the observation."""
        if not isinstance(source, list) or len(source) != 3:
            return False
        key = f"{source[0]}:{int(source[1])}"
        pending = self.pending.get(key)
        if not pending:
            return False
        offset = int(source[2])
        if offset not in pending:
            return False
        pending.discard(offset)
        if offset > self.seen.get(key, -1):
            self.seen[key] = offset
        return True

    def remote(self, obs: Observation) -> bool:
        """An observation read from the `learned` topic (ours or another worker's)."""
        key = obs.source_key
        if key is None or obs.source is None:
            self._apply(obs)
            return True
        offset = obs.source[2]
        pending = self.pending.get(key)
        duplicate = offset <= self.seen.get(key, -1)
        if offset > self.seen.get(key, -1):
            self.seen[key] = offset
        if pending is not None and offset in pending:
            pending.discard(offset)  # our own echo: applied when it was observed
            return False
        if duplicate:  # re-published after a crash, already read once
            self.duplicates += 1
            return False
        self._apply(obs)
        return True

    def _apply(self, obs: Observation) -> None:
        index = self.catalog.index
        items = [index[i] for i in obs.items if i in index]
        if not items or obs.weight <= 0:
            return
        self.applied += 1
        self.catalog.record_interaction(items, obs.weight)
        if self.trending is not None:
            self.trending.observe(items, obs.weight, obs.ts)
        if self.repeats is not None and obs.flags:
            self.repeats.observe_flags(obs.topic, obs.items, obs.flags, self._category_of)
        if isinstance(self.relations, CoOccurrence):
            context = [index[i] for i in obs.context if i in index]  # version 1 only
            self.relations.observe(items, context, obs.weight)
            pairs = [(index[a], index[b], w) for a, b, w in obs.pairs if a in index and b in index]
            self.relations.observe_pairs(pairs)
