"""Datasets as time-ordered topic messages: real data adapters and the generic folder format.

``load_dataset`` is the one entry point for the CLI (``replay``, ``eval``, ``demo``): a known
name loads a bundled real dataset, anything else is read as a generic dataset folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream.datasets.generic import (
    INPUT_TOPICS,
    Dataset,
    Events,
    event_count,
    load_dir,
    read_catalog,
    read_events,
    without_topic,
    write_dataset,
)

__all__ = [
    "DATASET_NAMES",
    "INPUT_TOPICS",
    "Dataset",
    "Events",
    "event_count",
    "load_dataset",
    "load_dir",
    "load_subset",
    "read_catalog",
    "read_events",
    "without_topic",
    "write_dataset",
]

#: Names accepted by ``load_dataset`` (aliases map to the same loader).
DATASET_NAMES: dict[str, str] = {
    "completejourney": "completejourney",
    "complete-journey": "completejourney",
    "cj": "completejourney",
    "movielens": "movielens",
    "movielens100k": "movielens",
    "ml-100k": "movielens",
}


def load_dataset(name_or_dir: str, **kw: Any) -> Dataset:
    """Load "completejourney" | "movielens" (keyword arguments go to that loader) or a folder.

    Loaders are imported lazily so reading a generic folder never pays for pyarrow.
    """
    kind = DATASET_NAMES.get(name_or_dir.lower())
    if kind == "completejourney":
        from stream.datasets.completejourney import load_completejourney

        return load_completejourney(**kw)
    if kind == "movielens":
        from stream.datasets.movielens import load_movielens100k

        return load_movielens100k(**kw)
    path = Path(name_or_dir)
    if path.is_dir():
        if kw:
            raise TypeError(f"a dataset folder takes no options, got {sorted(kw)}")
        return load_dir(path)
    raise ValueError(
        f"unknown dataset {name_or_dir!r}: use completejourney, movielens or a folder with "
        "catalog.jsonl and events.jsonl"
    )


def load_subset(
    name_or_dir: str, max_users: int | None = None, seed: int = 0, **kw: Any
) -> Dataset:
    """Like ``load_dataset``, with one name for "a seeded subset of users" across adapters."""
    kind = DATASET_NAMES.get(name_or_dir.lower())
    if kind == "completejourney":
        return load_dataset(name_or_dir, max_households=max_users, seed=seed, **kw)
    if kind == "movielens":
        return load_dataset(name_or_dir, max_users=max_users, seed=seed, **kw)
    if max_users is not None:
        raise ValueError("--max-users applies to the bundled datasets, not to a folder")
    return load_dataset(name_or_dir)
