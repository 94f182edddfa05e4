"""Query→target pairs mined from real interaction data (numpy only; no torch needed).

- **buy→buy** (Complete Journey): for every item of a household's basket, up to ``per_query``
  targets drawn (seeded) from the same basket and the household's next basket.
- **view→buy** and **buy→buy** (MovieLens-100K, ratings of 3 = views, >= 4 = buys by the
  existing adapter): for every view or buy of a user, the next ``window`` buys of that user.

Every pair keeps the time of its query event, so the split can hold out the latest pairs.
All items of all sources live in one index space (the concatenated catalogs), because one
encoder is trained for every shop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PairSet:
    """Pairs of one relation of one source; ``query``/``target`` index the corpus catalog."""

    name: str
    role: str  # role of the query item: "view" or "buy"
    query: np.ndarray
    target: np.ndarray
    ts: np.ndarray

    def __len__(self) -> int:
        return int(self.query.size)

    def take(self, mask: np.ndarray) -> PairSet:
        return PairSet(self.name, self.role, self.query[mask], self.target[mask], self.ts[mask])

    def split(self, holdout: float) -> tuple[PairSet, PairSet]:
        """Time-based: the pairs whose query time is in the latest ``holdout`` share are test."""
        cut = float(np.quantile(self.ts, 1.0 - holdout)) if len(self) else 0.0
        return self.take(self.ts < cut), self.take(self.ts >= cut)


@dataclass
class Corpus:
    """Concatenated catalogs of every source, and the index range of each source."""

    catalog: list[Mapping[str, Any]]
    index: dict[str, int]
    ranges: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, sources: Mapping[str, Sequence[Mapping[str, Any]]]) -> Corpus:
        catalog: list[Mapping[str, Any]] = []
        index: dict[str, int] = {}
        ranges: dict[str, tuple[int, int]] = {}
        for source, messages in sources.items():
            start = len(catalog)
            for msg in messages:
                key = f"{source}/{msg['item_id']}"
                if key not in index:
                    index[key] = len(catalog)
                    catalog.append(msg)
            ranges[source] = (start, len(catalog))
        return cls(catalog, index, ranges)


def _pairs(name: str, role: str, rows: np.ndarray | list[tuple[int, int, int]]) -> PairSet:
    arr = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    keep = arr[:, 0] != arr[:, 1]
    arr = arr[keep]
    order = np.argsort(arr[:, 2], kind="stable")
    arr = arr[order]
    return PairSet(name, role, arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy())


def basket_pairs(
    events: Iterable[Mapping[str, Any]],
    corpus: Corpus,
    source: str,
    per_query: int = 2,
    seed: int = 0,
) -> PairSet:
    """buy→buy from `orders`: same basket or the same user's next basket."""
    baskets: dict[str, list[tuple[int, np.ndarray]]] = {}
    for ev in events:
        if ev.get("topic") != "orders":
            continue
        found = [corpus.index.get(f"{source}/{it['item_id']}") for it in ev["items"]]
        known = np.asarray([i for i in found if i is not None], dtype=np.int64)
        if known.size:
            baskets.setdefault(str(ev["user_id"]), []).append((int(ev["ts"]), np.unique(known)))
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    for user in sorted(baskets):
        seq = baskets[user]
        for n, (ts, items) in enumerate(seq):
            pool = items if n + 1 == len(seq) else np.concatenate([items, seq[n + 1][1]])
            if pool.size < 2:
                continue
            picks = pool[rng.integers(0, pool.size, size=(items.size, per_query))]
            block = np.empty((items.size * per_query, 3), dtype=np.int64)
            block[:, 0] = np.repeat(items, per_query)
            block[:, 1] = picks.ravel()
            block[:, 2] = ts
            rows.append(block)
    stacked = np.concatenate(rows) if rows else np.zeros((0, 3), dtype=np.int64)
    return _pairs(f"{source} buy→buy", "buy", stacked)


def sequence_pairs(
    events: Iterable[Mapping[str, Any]], corpus: Corpus, source: str, window: int = 5
) -> tuple[PairSet, PairSet]:
    """(view→buy, buy→buy): each view/buy of a user → that user's next ``window`` buys."""
    history: dict[str, list[tuple[int, str, int]]] = {}
    for ev in events:
        topic = ev.get("topic")
        if topic == "clicks":
            entries = [(str(ev["item_id"]), "view")]
        elif topic == "orders":
            entries = [(str(it["item_id"]), "buy") for it in ev["items"]]
        else:
            continue
        for item_id, role in entries:
            idx = corpus.index.get(f"{source}/{item_id}")
            if idx is not None:
                history.setdefault(str(ev["user_id"]), []).append((idx, role, int(ev["ts"])))
    out: dict[str, list[tuple[int, int, int]]] = {"view": [], "buy": []}
    for user in sorted(history):
        seq = history[user]
        buys = [n for n, (_, role, _) in enumerate(seq) if role == "buy"]
        pos = 0
        for n, (idx, role, ts) in enumerate(seq):
            while pos < len(buys) and buys[pos] <= n:
                pos += 1
            for b in buys[pos : pos + window]:
                out[role].append((idx, seq[b][0], ts))
    return (
        _pairs(f"{source} view→buy", "view", out["view"]),
        _pairs(f"{source} buy→buy", "buy", out["buy"]),
    )


def relation_kind(pairs: PairSet, within: PairSet, many: int = 1) -> np.ndarray:
    """Per pair of ``pairs``: "1→1", "1→n", "m→1" or "m→n", from the distinct pairs of
    ``within``: a side is "n"/"m" when the query has more than ``many`` distinct targets
    (the target more than ``many`` distinct queries), as in Pfeed's relation-complexity study."""
    key = np.unique(within.query * (1 << 32) + within.target)
    q, t = key >> 32, key & ((1 << 32) - 1)
    uq, out_deg = np.unique(q, return_counts=True)
    ut, in_deg = np.unique(t, return_counts=True)

    def degree(values: np.ndarray, keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(keys, values), 0, max(0, keys.size - 1))
        found = keys.size > 0 and keys[pos] == values
        return np.where(found, counts[pos] if keys.size else 0, 1)

    many_targets = degree(pairs.query, uq, out_deg) > many
    many_queries = degree(pairs.target, ut, in_deg) > many
    kinds = np.array(["1→1", "1→n", "m→1", "m→n"])
    return kinds[many_targets.astype(int) + 2 * many_queries.astype(int)]
