"""A hand-made folder with messages a worker rejects: the evaluation sets them aside, counts them
and says why, instead of crashing on a KeyError deep in the replay."""

from __future__ import annotations

from typing import Any

import pytest

from stream.evaluation.prequential import EvalConfig, evaluate

T0 = 1_600_000_000_000


def shop(bad: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Five users alternately viewing and buying 20 items, then the ``bad`` events."""
    catalog = [{"topic": "catalog", "item_id": f"i{i}", "ts": T0} for i in range(20)]
    events: list[dict[str, Any]] = []
    for r in range(30):
        for u in range(5):
            item, ts = f"i{(u + r) % 20}", T0 + 1000 * len(events)
            events.append({"topic": "clicks", "event_id": f"c{r}{u}", "user_id": f"u{u}",
                           "ts": ts, "item_id": item})  # fmt: skip
            events.append({"topic": "orders", "event_id": f"o{r}{u}", "user_id": f"u{u}",
                           "ts": ts + 1, "items": [{"item_id": item, "quantity": 1}]})  # fmt: skip
    ts = T0 + 1000 * len(events)
    for n, event in enumerate(bad):
        events.append({"event_id": f"bad{n}", "ts": ts + n, **event})
    return catalog, events


BAD = [
    {"topic": "orders", "user_id": "u1", "items": []},  # an order of nothing
    {"topic": "orders", "user_id": "u1"},  # no lines at all
    {"topic": "clicks", "item_id": "i1"},  # no user
    {"topic": "clicks", "user_id": "u2", "item_id": 7},  # an id that is not a string
]


def test_events_a_worker_rejects_are_counted_not_fatal() -> None:
    """Crashed before (checked on main: KeyError 'items' from the order without lines)."""
    unknown = {"topic": "orders", "user_id": "u3", "items": [{"item_id": "nope"}]}
    catalog, events = shop([*BAD, unknown])
    report = evaluate(catalog, events, EvalConfig(dataset="odd", pfeed=False, progress=False))
    data = report["data"]
    assert data["dead_lettered"] == {"clicks": 2, "orders": 2}
    assert data["events"] + sum(data["dead_lettered"].values()) == len(events)
    assert data["unknown_item_events"] == 1  # valid, but not in the catalog: the worker skips it
    (note,) = [n for n in report["notes"] if n.startswith("Dead-lettered")]
    assert "2 on clicks, 2 on orders" in note and "event 301" in note


def test_a_folder_of_rejected_events_says_so() -> None:
    catalog, _ = shop([])
    bad = [{"event_id": f"b{n}", "ts": T0 + n, **event} for n, event in enumerate(BAD)]
    with pytest.raises(ValueError, match=r"no user event a worker would accept\. Dead-lettered"):
        evaluate(catalog, bad, EvalConfig(dataset="odd", pfeed=False, progress=False))
