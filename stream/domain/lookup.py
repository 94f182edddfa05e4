"""Pfeed's precomputed query→target lookup: for every item and query role, its top-K targets.

Built from the encoder's embeddings with chunked matrix products (one ``chunk × items`` product
per block of queries, never a per-item search), then read by ranking through the
``RelatedItems`` protocol in microseconds: ``related`` returns two preallocated row slices.

Kept fresh incrementally: ``upsert`` gives new or changed items their own rows and merges them
into every other row where they beat the current K-th target (one ``items × new`` product);
rows that held a changed or removed item are recomputed. A worker updates a ``copy`` in a
thread and swaps it in (``stream.adapters.live_lookup``), so readers never see a row half
written. Stock and feed restrictions are *not* baked in: ranking applies eligibility at read
time, so a stock flip needs no lookup change.
Strength = cosine similarity clipped to [0, 1].

Hub-aware rows (``hub_k`` > 0): a learned space has hubs, targets close to almost every query
(on a 900-item shop 36 targets filled every raw top-20 row). Rows are then chosen by CSLS
(Conneau et al., 2018): ``cos(q, t) - r(t)``, ``r(t)`` the mean similarity of target t to its
``hub_k`` nearest queries of the role. A hub's r is high, so it enters only the rows of queries
that are closer to it than its usual neighbours; the query's own term of CSLS is the same for
all of its targets and changes no row. ``r`` is computed with the same chunked products (one
``chunk × items`` product per block of targets) at a full build and kept exact as items arrive
(``stream.domain.hubness``): an upsert updates every target's r with the new queries and
recomputes the rows holding a target whose r rose (up to ``max_recompute`` of them; beyond,
those rows only have their scores moved by the rise and re-sorted, and a full build makes them
exact again). A changed item's old query still counts in the others' r until a full build.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from stream.domain import hubness, lookup_ivf, lookup_updates
from stream.domain.lookup_buffers import Row, resized
from stream.domain.row_top_k import beaten_rows, merged
from stream.domain.row_top_k import top_k as _top_k

ROLES = ("view", "buy")
#: nearest queries in a target's hubness r(t) (0: raw cosine rows)
HUB_K = 0
#: full builds of more items than this are approximate (``lookup_ivf``): 100,000 items cost
#: ~2 minutes exactly here (the bundled grocery data's 68,260 stay exact)
EXACT_MAX = 100_000
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


class QueryTargetLookup:
    """Rows ``targets[role][i]`` / ``strengths[role][i]``: item i's top-K targets for a query of
    ``role``, strongest first, padded with -1 / 0. Item positions follow ``ids``."""

    #: rows recomputed exactly when an item changes or goes; beyond, the item is cut out of them
    max_recompute = 2048

    def __init__(
        self, ids: Sequence[str], embeddings: np.ndarray, k: int = 20, hub_k: int = HUB_K
    ) -> None:
        if embeddings.shape[:2] != (3, len(ids)):
            raise ValueError(f"embeddings {embeddings.shape} do not match {len(ids)} ids")
        self.k = k
        self.hub_k = hub_k
        self.ids = list(ids)
        self.index = {item_id: i for i, item_id in enumerate(self.ids)}
        n = len(ids)
        # Preallocated buffers with spare capacity (doubling): adding one item to a 68k-item
        # lookup must not copy ~100 MB. The public arrays below are views of their first n rows.
        self._capacity = n
        self._buffers: dict[str, np.ndarray] = {
            "embeddings": np.array(embeddings, dtype=np.float32, order="C", copy=True),
            "active": np.ones(n, dtype=bool),  # may be a target
        }
        for r in ROLES:
            self._buffers[f"rows_{r}"] = np.full((n, k), -1, dtype=np.int64)
            self._buffers[f"sims_{r}"] = np.full((n, k), -np.inf, dtype=np.float32)
            self._buffers[f"strengths_{r}"] = np.zeros((n, k), dtype=np.float64)
            self._buffers[f"lengths_{r}"] = np.zeros(n, dtype=np.int64)
            self._buffers[f"hub_{r}"] = np.zeros(n, dtype=np.float32)  # r(t), 0: raw rows
            self._buffers[f"near_{r}"] = np.full((n, hub_k), -np.inf, dtype=np.float32)
        for part in lookup_updates.PARTS:  # each item's inverted list, for large updates
            self._buffers[f"label_{part}"] = np.full(n, -1, dtype=np.int64)
        #: per grouping of ``lookup_updates``, its centroids (made at the first large update)
        self.centroids: dict[str, np.ndarray] = {}
        #: updates of lookups larger than this go through those lists (checked)
        self.exact_max = EXACT_MAX
        self.exact_updates = 0  # parts of such updates the check sent to the exact path
        self.version = 0
        #: what the last full build's recall check measured per role (approximate builds)
        self.recall: dict[str, float] = {}
        self._bind(n)

    def _bind(self, n: int) -> None:
        b = self._buffers
        self.embeddings = b["embeddings"][:, :n]
        self.active = b["active"][:n]
        self.rows = {r: b[f"rows_{r}"][:n] for r in ROLES}
        self.sims = {r: b[f"sims_{r}"][:n] for r in ROLES}
        self.strengths = {r: b[f"strengths_{r}"][:n] for r in ROLES}
        self.lengths = {r: b[f"lengths_{r}"][:n] for r in ROLES}
        self.hub = {r: b[f"hub_{r}"][:n] for r in ROLES}
        self.near = {r: b[f"near_{r}"][:n] for r in ROLES}
        self.labels = {p: b[f"label_{p}"][:n] for p in lookup_updates.PARTS}

    def __len__(self) -> int:
        return len(self.ids)

    def copy(self, capacity: int = 0) -> QueryTargetLookup:
        """An independent lookup with the same rows, room for ``capacity`` items, so a worker
        can update the copy in a thread while ranking keeps reading this one. Only the first
        ``len(self)`` rows are copied (the spare capacity would double what a copy costs)."""
        n = len(self.ids)
        out = QueryTargetLookup.__new__(QueryTargetLookup)
        out.__dict__.update(self.__dict__)
        out.ids, out.index, out.recall = list(self.ids), dict(self.index), dict(self.recall)
        out.centroids = dict(self.centroids)  # (replaced, never written in place)
        out._capacity = max(n, capacity)
        out._buffers = {
            name: resized(name, buf, out._capacity, n) for name, buf in self._buffers.items()
        }
        out._bind(n)
        return out

    # -- reads -----------------------------------------------------------------------------------
    def related(self, idx: int, role: str = "view") -> tuple[np.ndarray, np.ndarray]:
        if idx >= len(self.ids) or idx < 0:
            return _EMPTY
        role = "buy" if role == "buy" else "view"
        n = self.lengths[role][idx]
        return self.rows[role][idx, :n], self.strengths[role][idx, :n]

    # -- builds ----------------------------------------------------------------------------------
    def build(
        self,
        chunk: int = 256,
        exact_max: int = EXACT_MAX,
        progress: lookup_ivf.Progress | None = None,
    ) -> QueryTargetLookup:
        """Every row of both roles from scratch; returns self. Raw rows (``hub_k`` 0) of more
        than ``exact_max`` items are built approximately and checked (``lookup_ivf``): the
        exact build is quadratic. ``recall`` then holds what the check measured per role."""
        n = len(self.ids)
        self.recall, self.exact_max = {}, exact_max
        if self.hub_k <= 0 and n > exact_max and self._build_approximate(progress):
            return self
        self.rehub(np.arange(n), chunk)
        step = max(chunk, -(-n // 100))  # ~100 progress steps
        for start in range(0, n, step):
            self.recompute(np.arange(start, min(start + step, n)), chunk)
            if progress is not None:
                progress("exact rows", min(start + step, n), n)
        return self

    def _build_approximate(self, progress: lookup_ivf.Progress | None) -> bool:
        """Both roles' rows through inverted lists, ``nprobe`` doubled until the sampled
        recall reaches ``MIN_RECALL``; False (nothing stored) when that needs a quarter of
        the lists or more: the exact build is then about as cheap."""
        if not self.active.any():
            return False
        targets, own = self.embeddings[2], np.arange(len(self.ids))
        lists = lookup_ivf.make_lists(targets, self.active, lookup_ivf.n_lists(len(self.ids)))
        sample = lookup_ivf.sample_of(len(self.ids))
        built: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        measured: dict[str, float] = {}
        for ri, role in enumerate(ROLES):
            queries, nprobe = self.embeddings[ri], lookup_ivf.NPROBE
            exact = lookup_ivf.exact_rows(queries[sample], sample, targets, self.active, self.k)
            while role not in built:
                if 4 * nprobe >= len(lists):
                    return False
                step = None if progress is None else partial(progress, f"{role} lists")
                idx, vals = lookup_ivf.approximate_rows(
                    queries, own, targets, lists, self.k, nprobe, step
                )
                measured[role] = lookup_ivf.recall(idx[sample], exact)
                if measured[role] >= lookup_ivf.MIN_RECALL:
                    built[role] = idx, vals
                nprobe *= 2
        for role, (idx, vals) in built.items():
            self._store(role, own, idx, vals)
        self.recall = measured
        self.version += 1
        return True

    def rehub(self, targets: np.ndarray, chunk: int = 256) -> None:
        """``r(t)`` of ``targets`` for both roles: the mean of their ``hub_k`` highest
        similarities to other items' queries (every item has rows, so every item is a query)."""
        if self.hub_k <= 0:
            return
        for ri, role in enumerate(ROLES):
            near = hubness.nearest(
                self.embeddings[2], self.embeddings[ri], targets, self.hub_k, chunk
            )
            self.near[role][targets], self.hub[role][targets] = near, hubness.mean_near(near)

    def scores(self, role: str, cos: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Row scores of the ``targets`` columns of ``cos``: ``cos - r(t)``, and -inf where
        ``cos <= 0``. Unrelated targets stay out of rows: CSLS would lift a target close to
        nothing (low r; an item the encoder cannot place) to the top of rows it is opposite
        to, and the blend weighs a row by position, not cosine (``BlendedRelations``), so it
        would count like a neighbour. Raw rows (``hub_k`` 0): the cosine."""
        if self.hub_k <= 0:
            return cos
        return np.where(cos > 0, cos - self.hub[role][targets], -np.inf)

    def _new_queries(self, pos: np.ndarray, chunk: int) -> np.ndarray:
        """Queries ``pos`` arrived: every other target's r takes them in. r only rises, so a
        row is exact unless it holds a target whose r rose; those rows are returned to be
        recomputed. Past ``max_recompute`` rows, the targets they hold are only rescored with
        the new r and re-sorted (exact again at the next full build)."""
        if self.hub_k <= 0:
            return pos[:0]
        others = np.setdiff1d(np.arange(len(self.ids)), pos)
        step = max(chunk, (1 << 22) // max(1, pos.size))  # ≤ 4M similarities per product
        stale: list[np.ndarray] = []
        for ri, role in enumerate(ROLES):
            before = self.hub[role].copy()
            for start in range(0, others.size, step):
                block = others[start : start + step]
                sims = self.embeddings[2, block] @ self.embeddings[ri, pos].T
                self.near[role][block] = hubness.merged(self.near[role][block], sims)
                self.hub[role][block] = hubness.mean_near(self.near[role][block])
            rose = np.flatnonzero(self.hub[role] > before)
            stale.append(np.flatnonzero(np.isin(self.rows[role], rose).any(axis=1)))
        rows = np.union1d(*stale)
        if rows.size <= self.max_recompute:
            return rows
        for role in ROLES:
            self._rescore(role)
        return pos[:0]

    def _rescore(self, role: str) -> None:
        """Every row's held targets scored again with the current r, rows re-sorted."""
        rows = self.rows[role]
        safe = np.maximum(rows, 0)
        cos = np.einsum("nd,nkd->nk", self.embeddings[ROLES.index(role)], self.embeddings[2][safe])
        vals = np.where(rows >= 0, cos - self.hub[role][safe], -np.inf).astype(np.float32)
        order = np.argsort(-vals, axis=1, kind="stable")
        idx = np.take_along_axis(rows, order, axis=1)
        self._store(role, np.arange(len(self.ids)), idx, np.take_along_axis(vals, order, axis=1))

    def recompute(self, queries: np.ndarray, chunk: int = 256) -> None:
        """Rows of ``queries`` against every active target, ``chunk`` queries per product."""
        targets = self.embeddings[2]
        every = np.arange(len(self.ids))
        for ri, role in enumerate(ROLES):
            q_emb = self.embeddings[ri]
            for start in range(0, queries.size, chunk):
                block = queries[start : start + chunk]
                sims = self.scores(role, q_emb[block] @ targets.T, every)
                sims[:, ~self.active] = -np.inf
                sims[np.arange(block.size), block] = -np.inf  # never its own target
                idx, vals = _top_k(sims, self.k)
                self._store(role, block, idx, vals)
        self.version += 1

    def _store(self, role: str, block: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> None:
        """Rows ranked by ``vals`` (the CSLS score when hub-aware); strength stays the cosine."""
        cos = np.where(idx >= 0, vals + self.hub[role][np.maximum(idx, 0)], 0.0)
        row = Row(idx, vals, np.clip(cos, 0.0, 1.0), (idx >= 0).sum(axis=1))
        self._write(role, block, row)

    def _write(self, role: str, block: np.ndarray, row: Row) -> None:
        """(A staged update journals this instead: ``lookup_patch``.)"""
        self.rows[role][block], self.sims[role][block] = row.targets, row.sims
        self.strengths[role][block], self.lengths[role][block] = row.strengths, row.lengths

    # -- incremental -----------------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        if n <= len(self.ids):
            return
        if n > self._capacity:
            cap = max(n, 2 * self._capacity, 64)
            for name, old in list(self._buffers.items()):
                self._buffers[name] = resized(name, old, cap, len(self.ids))
            self._capacity = cap
        self._bind(n)

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, chunk: int = 256) -> np.ndarray:
        """New or changed items (``embeddings`` (3, m, d)); returns their positions."""
        pos = np.empty(len(ids), dtype=np.int64)
        new_ids: list[str] = []
        for j, item_id in enumerate(ids):
            p = self.index.get(item_id)
            if p is None:
                p = self.index[item_id] = len(self.ids) + len(new_ids)
                new_ids.append(item_id)
            pos[j] = p
        self._grow(len(self.ids) + len(new_ids))
        self.ids.extend(new_ids)
        stale = self._release(pos, chunk)
        self.embeddings[:, pos] = embeddings
        self.active[pos] = True
        if self.hub_k <= 0:  # raw rows: large batches through inverted lists
            lookup_updates.update(self, pos, stale, chunk)
            return pos
        self.rehub(pos, chunk)
        stale = np.union1d(stale, self._new_queries(pos, chunk))
        self._merge(pos, chunk)
        self.recompute(np.union1d(pos, stale), chunk)
        return pos

    def remove(self, ids: Sequence[str], chunk: int = 256) -> None:
        """Deleted items stop being targets (their own rows stay: a past buy still relates)."""
        pos = np.asarray([self.index[i] for i in ids if i in self.index], dtype=np.int64)
        if pos.size:
            self.active[pos] = False
            lookup_updates.rows_of(self, self._release(pos, chunk), chunk)

    def _release(self, pos: np.ndarray, chunk: int) -> np.ndarray:
        """Rows holding ``pos`` that must be recomputed exactly. A hub target sits in tens of
        thousands of rows; past ``max_recompute`` rows it is only cut out of them (they keep
        their other targets, strongest first, one short until the next full build)."""
        held = self._rows_holding(pos)
        if held.size <= self.max_recompute:
            return held
        for role in ROLES:
            ids, sims = self._held(role, held)
            sims[np.isin(ids, pos)] = -np.inf
            order = np.argsort(-sims, axis=1, kind="stable")
            ids = np.take_along_axis(ids, order, axis=1)
            sims = np.take_along_axis(sims, order, axis=1)
            ids[~np.isfinite(sims)] = -1
            self._store(role, held, ids, sims)
        return held[:0]

    def _rows_holding(self, pos: np.ndarray) -> np.ndarray:
        return np.union1d(*(self._holding(role, pos) for role in ROLES))

    # what an update reads of the rows, so a staged one can read its own writes (``lookup_patch``)
    def _holding(self, role: str, pos: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(self.rows[role], pos).any(axis=1))

    def _held(self, role: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.rows[role][rows], self.sims[role][rows]  # (copies: callers write them)

    def _kth(self, role: str, rows: np.ndarray | None = None) -> np.ndarray:
        return self.sims[role][:, -1] if rows is None else self.sims[role][rows, -1]

    def _merge(
        self,
        pos: np.ndarray,
        chunk: int,
        roles: Sequence[str] = ROLES,
        only: np.ndarray | None = None,
    ) -> None:
        """Enter the items ``pos`` into every row (or the rows ``only``) where they beat its
        K-th target; not into their own rows: ``upsert`` recomputes those next."""
        t_new = self.embeddings[2, pos]
        step = max(chunk, (1 << 22) // max(1, pos.size))  # rows per product: ≤ 4M similarities
        every = np.arange(len(self.ids)) if only is None else only
        own = np.zeros(len(self.ids), dtype=bool)
        own[pos] = True
        for ri, role in enumerate(ROLES):
            if role not in roles:
                continue
            q_emb = self.embeddings[ri]
            for start in range(0, every.size, step):
                block = every[start : start + step]
                sims = self.scores(role, q_emb[block] @ t_new.T, pos)
                sims[own[block]] = -np.inf  # (and so never its own target)
                rows = beaten_rows(sims, self._kth(role, block))
                if not rows.size:
                    continue
                # (a target at or below a row's K-th cannot enter it: offering every one is
                # the merge of the beating ones, compiled)
                if rows.size < block.size:  # (rows cut short: every one is beaten)
                    block, sims = block[rows], sims[rows]
                idx, vals = merged(*self._held(role, block), pos, sims, self.k)
                self._store(role, block, idx, vals)

    # -- alignment with a worker's catalog -------------------------------------------------------
    def aligned_to(self, catalog_ids: Sequence[str]) -> QueryTargetLookup:
        """The same lookup with positions = ``catalog_ids`` positions (a worker's Catalog index).
        Items unknown to the lookup get empty rows and are no targets until upserted."""
        mapping = np.full(len(self.ids) + 1, -1, dtype=np.int64)  # last slot maps -1 → -1
        src = np.full(len(catalog_ids), -1, dtype=np.int64)
        for new, item_id in enumerate(catalog_ids):
            old = self.index.get(item_id)
            if old is not None:
                mapping[old] = new
                src[new] = old
        known = src >= 0
        emb = np.zeros((3, len(catalog_ids), self.embeddings.shape[2]), dtype=np.float32)
        emb[:, known] = self.embeddings[:, src[known]]
        out = QueryTargetLookup(catalog_ids, emb, self.k, self.hub_k)
        out.active[:] = False
        out.active[known] = self.active[src[known]]
        for role in ROLES:
            out.hub[role][known] = self.hub[role][src[known]]
            out.near[role][known] = self.near[role][src[known]]
            idx = mapping[self.rows[role][src[known]]]
            vals = np.where(idx >= 0, self.sims[role][src[known]], -np.inf).astype(np.float32)
            top, vals = _top_k(vals, self.k)
            rows = np.where(top >= 0, np.take_along_axis(idx, np.maximum(top, 0), 1), -1)
            out._store(role, np.flatnonzero(known), rows, vals)
        return out
