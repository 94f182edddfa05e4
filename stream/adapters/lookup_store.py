"""Versioned lookup files every worker reads: ``<root>/v<N>.npz`` plus a ``current`` pointer.

``recstream model index`` publishes a new version; workers load ``current`` at start and
``LookupReloader.poll()`` swaps in a newer one without a restart, so N workers rank from the
same lookup. Each file and the pointer are written to a temporary name and renamed (atomic on
POSIX), so a reader never sees half a file; old versions are pruned but the last few are kept
so a worker still loading one is not pulled from under it.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import numpy as np

from stream.domain.lookup import ROLES, QueryTargetLookup

#: 2: hub-aware rows (``hub_k``, per role ``hub`` and ``near``); 1 (raw rows) still loads
FORMAT = 2
READABLE = (1, 2)
POINTER = "current"
KEEP = 3
_VERSION = re.compile(r"^v(\d+)\.npz$")


def _unique() -> str:
    """A temporary-file suffix no other writer uses: workers in containers sharing the folder all
    run as PID 1, so the PID alone would let two of them write the same temporary file."""
    return f"{os.getpid()}-{secrets.token_hex(6)}"


def versions(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if (m := _VERSION.match(p.name)))


def save(lookup: QueryTargetLookup, path: Path) -> None:
    arrays: dict[str, np.ndarray] = {
        "format": np.asarray(FORMAT),
        "k": np.asarray(lookup.k),
        "hub_k": np.asarray(lookup.hub_k),
        "ids": np.asarray(lookup.ids, dtype=str),
        "embeddings": lookup.embeddings,
        "active": lookup.active,
    }
    for role in ROLES:
        arrays[f"rows_{role}"] = lookup.rows[role]
        arrays[f"sims_{role}"] = lookup.sims[role]
        arrays[f"hub_{role}"] = lookup.hub[role]
        arrays[f"near_{role}"] = lookup.near[role]
    tmp = path.with_name(f".{path.name}.{_unique()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def load(path: Path) -> QueryTargetLookup:
    with np.load(path, allow_pickle=False) as data:
        fmt = int(data["format"])
        if fmt not in READABLE:
            raise ValueError(f"{path}: lookup format {fmt}, expected one of {READABLE}")
        hub_k = int(data["hub_k"]) if fmt >= 2 else 0  # format 1 rows are raw cosine
        ids, emb = data["ids"].tolist(), data["embeddings"]
        lookup = QueryTargetLookup(ids, emb, int(data["k"]), hub_k)
        lookup.active[:] = data["active"]
        for role in ROLES:
            if hub_k:  # before the rows: their strengths are score + r(target)
                lookup.hub[role][:] = data[f"hub_{role}"]
                lookup.near[role][:] = data[f"near_{role}"]
            rows, sims = data[f"rows_{role}"], data[f"sims_{role}"]
            lookup._store(role, np.arange(len(lookup)), rows.copy(), sims.copy())
    return lookup


def publish(lookup: QueryTargetLookup, root: Path) -> Path:
    """Write the next version and point ``current`` at it; returns the new file."""
    root.mkdir(parents=True, exist_ok=True)
    existing = versions(root)
    path = root / f"v{(existing[-1] + 1) if existing else 1}.npz"
    save(lookup, path)
    pointer = root / f".{POINTER}.{_unique()}.tmp"
    pointer.write_text(path.name + "\n")
    os.replace(pointer, root / POINTER)
    for old in versions(root)[:-KEEP]:
        (root / f"v{old}.npz").unlink(missing_ok=True)
    return path


def current_path(root: Path) -> Path | None:
    try:
        name = (root / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    return root / name if _VERSION.match(name) else None


def load_current(root: Path) -> QueryTargetLookup | None:
    path = current_path(root)
    return load(path) if path is not None else None


class LookupReloader:
    """Hot reload for a worker: ``poll()`` returns a newly published lookup once, else None.
    Reading the small pointer file costs microseconds; call it every few seconds, not per event.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loaded: Path | None = None

    def poll(self) -> QueryTargetLookup | None:
        path = current_path(self.root)
        if path is None or path == self.loaded:
            return None
        lookup = load(path)
        self.loaded = path
        return lookup
