"""What a worker learned from `learned`, as data: captured and restored by item id, exactly.

A worker folds every `learned` observation into its shared read models (popularity, trending,
repeat propensities, co-occurrence) and, without a snapshot, re-reads the whole topic at every
start: 27 µs an observation, so a shop at 500 events/s adds ~20 minutes of start-up a day. A
snapshot is those models plus the ``Learner``'s de-duplication state (``seen``, ``pending``)
at a point where the follower had applied exactly the records before ``positions``; restoring
it and reading on from there gives the same models, float for float, as reading everything
(``tests/unit/test_learned_snapshot.py``), because:

* every number is stored as it is (float64 arrays, no re-summing): a sum continued from a
  restored value adds the same floats in the same order as the uninterrupted worker;
* ``pending`` (observations this worker applied at once and whose echo it has not read yet) is
  kept, so their echoes after the restart are skipped exactly as they would have been; an
  observation whose batch was never delivered (a crash) is re-observed when the batch is
  re-delivered, recognised as pending, not applied twice, and published again;
* arrays are indexed by item *id* (the catalog's order at capture time, in ``ids``): a restart
  may read the catalog in another order, and an item the catalog no longer has is dropped, as
  an observation naming it would be.

Pure: ``capture`` returns (meta, arrays), ``restore`` takes them; files and Kafka positions
are the adapter's (``stream.adapters.learned_snapshots``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.domain.learned import RepeatModel
from stream.domain.learning import Learner
from stream.domain.relations import CoOccurrence

#: bumped when the layout changes; a snapshot of another version is not read (full replay)
SNAPSHOT_VERSION = 1

Arrays = dict[str, np.ndarray]


def capture(learner: Learner) -> tuple[dict[str, Any], Arrays]:
    """The learner's read models and de-duplication state (copies: the worker goes on)."""
    catalog = learner.catalog
    n = len(catalog.ids)
    meta: dict[str, Any] = {
        "version": SNAPSHOT_VERSION,
        "ids": list(catalog.ids),
        "seen": dict(learner.seen),
        "pending": {key: sorted(offsets) for key, offsets in learner.pending.items() if offsets},
        "applied": learner.applied,
        "duplicates": learner.duplicates,
        "repeats": learner.repeats.to_dict() if learner.repeats is not None else None,
        "trending": None,
        "cooccurrence": isinstance(learner.relations, CoOccurrence),
    }
    arrays: Arrays = {"popularity": catalog.popularity[:n].copy()}
    if learner.trending is not None:
        trending = learner.trending
        scores = np.zeros((len(trending.horizons_ms), n))
        cols = min(n, trending.scores.shape[1])
        scores[:, :cols] = trending.scores[:, :cols]
        arrays["trending"] = scores
        meta["trending"] = {"t0": trending.t0, "horizons_ms": list(trending.horizons_ms)}
    if isinstance(learner.relations, CoOccurrence):
        arrays.update(_capture_cooccurrence(learner.relations))
    return meta, arrays


def _capture_cooccurrence(cooc: CoOccurrence) -> Arrays:
    """Counts and partner rows (in each row's order) as flat arrays of catalog indexes."""
    items = list(cooc.rows.items())
    partners, weights, lens = cooc.rows.read(items)
    sizes = np.asarray(lens, dtype=np.int64)
    return {
        "count_items": np.fromiter(cooc.counts.keys(), dtype=np.int64, count=len(cooc.counts)),
        "count_values": np.fromiter(cooc.counts.values(), np.float64, len(cooc.counts)),
        "pair_rows": np.asarray(items, dtype=np.int64),
        "pair_sizes": sizes,
        "pair_partners": partners,
        "pair_weights": weights,
    }


class SnapshotMismatch(ValueError):
    """A snapshot this learner cannot take (another version, another configuration)."""


def restore(learner: Learner, meta: dict[str, Any], arrays: Arrays) -> int:
    """Put a captured state into a learner that has applied nothing yet (a starting worker,
    its catalog read). Returns how many of the snapshot's items the catalog no longer has.

    All or nothing: every part is read and checked before the learner is touched, so a
    snapshot that does not fit (another version or configuration, a damaged file) raises
    ``SnapshotMismatch`` and leaves the learner as it was (the worker then reads `learned` from
    the beginning; half a snapshot under a full replay would count twice)."""
    if learner.applied or learner.seen or any(learner.pending.values()):
        raise SnapshotMismatch("the learner has applied observations already")
    try:
        parts = _read(learner, meta, arrays)
    except SnapshotMismatch:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotMismatch(f"damaged snapshot ({type(exc).__name__}: {exc})") from exc
    learner.catalog.restore_popularity(parts.known_now, parts.popularity)
    if parts.trending is not None and learner.trending is not None:
        learner.trending.restore(parts.trending[0], parts.known_now, parts.trending[1])
    if learner.repeats is not None and parts.repeats is not None:
        learner.repeats.rebuy, learner.repeats.view_return = (
            parts.repeats.rebuy,
            parts.repeats.view_return,
        )
    if isinstance(learner.relations, CoOccurrence) and parts.cooccurrence is not None:
        learner.relations.restore(*parts.cooccurrence)
    learner.seen, learner.pending = parts.seen, parts.pending
    learner.applied, learner.duplicates = parts.applied, parts.duplicates
    return parts.dropped


@dataclass
class _Parts:
    """A snapshot read and mapped to the current catalog, not yet applied."""

    known_now: np.ndarray
    popularity: np.ndarray
    trending: tuple[float | None, np.ndarray] | None
    repeats: RepeatModel | None
    cooccurrence: tuple[dict[int, float], dict[int, dict[int, float]]] | None
    seen: dict[str, int]
    pending: dict[str, set[int]]
    applied: int
    duplicates: int
    dropped: int


def _read(learner: Learner, meta: dict[str, Any], arrays: Arrays) -> _Parts:
    if meta.get("version") != SNAPSHOT_VERSION:
        raise SnapshotMismatch(f"snapshot version {meta.get('version')!r}")
    if bool(meta.get("cooccurrence")) != isinstance(learner.relations, CoOccurrence):
        raise SnapshotMismatch("the snapshot and the learner disagree on co-occurrence")
    trend = meta.get("trending")
    if (trend is None) != (learner.trending is None) or (
        trend is not None
        and learner.trending is not None
        and tuple(trend["horizons_ms"]) != learner.trending.horizons_ms
    ):
        raise SnapshotMismatch("the snapshot's trending horizons differ")
    index = learner.catalog.index
    ids = meta["ids"]
    now = np.array([index.get(str(i), -1) for i in ids], dtype=np.int64)
    known = now >= 0
    popularity = np.asarray(arrays["popularity"], dtype=np.float64)
    if popularity.shape != (len(ids),):
        raise SnapshotMismatch("popularity does not match the snapshot's items")
    trending = None
    if trend is not None:
        scores = np.asarray(arrays["trending"], dtype=np.float64)
        if scores.shape != (len(trend["horizons_ms"]), len(ids)):
            raise SnapshotMismatch("trending does not match the snapshot's items")
        t0 = trend["t0"]
        trending = (None if t0 is None else float(t0), scores[:, known])
    repeats = meta.get("repeats")
    return _Parts(
        known_now=now[known],
        popularity=popularity[known],
        trending=trending,
        repeats=None if repeats is None else RepeatModel.from_dict(repeats),
        cooccurrence=_read_cooccurrence(now, arrays) if meta.get("cooccurrence") else None,
        seen={str(k): int(v) for k, v in meta["seen"].items()},
        pending={str(k): {int(o) for o in v} for k, v in meta["pending"].items()},
        applied=int(meta["applied"]),
        duplicates=int(meta["duplicates"]),
        dropped=int((~known).sum()),
    )


def _read_cooccurrence(
    now: np.ndarray, arrays: Arrays
) -> tuple[dict[int, float], dict[int, dict[int, float]]]:
    """Rows and counts mapped to the current catalog's indexes, in their captured order."""
    n = now.size

    def mapped(snapshot_idx: np.ndarray) -> list[int]:
        snapshot_idx = np.asarray(snapshot_idx, dtype=np.int64)
        inside = (snapshot_idx >= 0) & (snapshot_idx < n)
        out = np.full(snapshot_idx.size, -1, dtype=np.int64)
        out[inside] = now[snapshot_idx[inside]]
        return out.tolist()

    counts: dict[int, float] = {}
    values = np.asarray(arrays["count_values"], dtype=np.float64).tolist()
    for i, value in zip(mapped(arrays["count_items"]), values, strict=True):
        if i >= 0:
            counts[i] = value
    pairs: dict[int, dict[int, float]] = {}
    partners = mapped(arrays["pair_partners"])
    weights = np.asarray(arrays["pair_weights"], dtype=np.float64).tolist()
    sizes = np.asarray(arrays["pair_sizes"], dtype=np.int64)
    if len(partners) != len(weights) or int(sizes.sum()) != len(partners) or (sizes < 0).any():
        raise SnapshotMismatch("co-occurrence rows do not add up")
    start = 0
    for i, size in zip(mapped(arrays["pair_rows"]), sizes.tolist(), strict=True):
        end = start + size
        if i >= 0:
            got = zip(partners[start:end], weights[start:end], strict=True)
            pairs[i] = {j: w for j, w in got if j >= 0}
        start = end
    return counts, pairs
