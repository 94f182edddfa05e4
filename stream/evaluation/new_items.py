"""The "new items" segment of the prequential evaluation: purchases of recently arrived items.

A content lookup that follows the catalog earns its keep on items nobody has interacted with
yet; on the overall figure those purchases drown among re-buys and popular items. This segment
scores every method's list only against the purchased items first seen less than ``window_ms``
before the purchase. "First seen" is learned from the stream as it is replayed (the earliest
``ts`` of a catalog message or event naming the item, among those already observed), so the
figure is prequential like every other: nothing about the future decides what counts as new.
A purchase of an item never seen before counts as new (its age is 0).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from stream.evaluation.metrics import MetricAccumulator

DAY_MS = 86_400_000
WINDOW_DAYS = 14
SEGMENT = "new_items"


def _item_ids(message: Mapping[str, Any]) -> list[str]:
    """Items a message names (catalog/stock/clicks carry ``item_id``, orders an ``items`` list)."""
    out = [str(message["item_id"])] if message.get("item_id") is not None else []
    lines = message.get("items")
    if isinstance(lines, list):
        out += [str(line["item_id"]) for line in lines if isinstance(line, Mapping)]
    return out


class NewItemScores:
    """First-seen times of items, and metrics of each method on the new items of each purchase."""

    def __init__(self, k: int, window_days: float = WINDOW_DAYS) -> None:
        self.k = k
        self.window_days = window_days
        self.window_ms = int(window_days * DAY_MS)
        self.first_seen: dict[str, int] = {}
        self.acc = MetricAccumulator(k=k, segments=(SEGMENT,))
        self.orders = 0
        self.lines = 0
        self.new_lines = 0

    def observe(self, message: Mapping[str, Any]) -> None:
        """Record items named by a message the methods have just observed (deletions ignored)."""
        if message.get("deleted") or "ts" not in message:
            return
        ts = int(message["ts"])
        for item in _item_ids(message):
            seen = self.first_seen.get(item)
            if seen is None or ts < seen:
                self.first_seen[item] = ts

    def new_targets(self, targets: Collection[str], ts: int) -> set[str]:
        """The purchased items younger than the window at ``ts`` (unseen ones are age 0)."""
        self.orders += 1
        self.lines += len(targets)
        new = {t for t in targets if ts - self.first_seen.get(t, ts) < self.window_ms}
        self.new_lines += len(new)
        return new

    def add(self, method: str, ranked: Sequence[str], new: Collection[str]) -> None:
        """Score one list against the new items of its purchase (orders without any are skipped)."""
        if new:
            self.acc.add(method, SEGMENT, ranked, new)

    def summary(self, catalog_size: int, popularity: Mapping[str, float]) -> dict[str, Any]:
        """The report's ``new_items`` section: per-method metrics plus how much is new."""
        scores = self.acc.summary(catalog_size=max(1, catalog_size), popularity=popularity)
        return {
            "window_days": self.window_days,
            "scored_orders": self.orders,
            "purchased_lines": self.lines,
            "new_lines": self.new_lines,
            "methods": {m: segs[SEGMENT] for m, segs in scores.items() if SEGMENT in segs},
        }


def markdown(report: Mapping[str, Any]) -> list[str]:
    """The report's "New items" section (nothing when the run has no such section)."""
    section = report.get("new_items")
    if not isinstance(section, Mapping):
        return []
    k = int(report.get("k", 10))
    methods: Mapping[str, Mapping[str, Any]] = section.get("methods") or {}
    lines_total = int(section.get("purchased_lines") or 0)
    new_total = int(section.get("new_lines") or 0)
    share = new_total / lines_total if lines_total else 0.0
    intro = (
        f"Scored purchases' items first seen in the stream less than "
        f"{section.get('window_days', WINDOW_DAYS):g} days before the purchase: {new_total:,} of "
        f"{lines_total:,} purchased items ({share:.1%}). Each list is scored against those items "
        "only; orders without any are left out."
    )
    if not methods:
        return ["## New items", "", intro, "", "No scored purchase of a new item.", ""]
    header = f"| Method | Recall@{k} | NDCG@{k} | HitRate@{k} | n |"
    rows = [header, "|---|---|---|---|---|"]
    for name, cell in methods.items():
        rows.append(
            f"| `{name}` | {cell.get(f'recall@{k}', 0.0):.4f} | {cell.get(f'ndcg@{k}', 0.0):.4f} "
            f"| {cell.get(f'hit_rate@{k}', 0.0):.4f} | {int(cell.get('n', 0)):,} |"
        )
    return ["## New items", "", intro, "", *rows, ""]
