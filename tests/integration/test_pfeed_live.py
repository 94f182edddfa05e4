"""Pfeed inside the stream, through the real broker and real worker processes (issue 9).

* the published lookup follows `catalog` and `stock`: a new item gets candidates and enters other
  items' rows from its content embedding alone, and a stock flip changes the lists at once;
* reasons name the query item a candidate came from;
* two workers on a 4-partition topic emit the same lists as one worker for the same events, both
  ranking from one published lookup.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream.adapters import lookup_store
from stream.adapters.encoder import OnnxItemEncoder
from stream.domain.lookup import QueryTargetLookup
from stream.tools import TopicReader, produce
from tests.conftest import Deployment, new_deployment
from tests.integration.test_pipeline import event, now_ms

pytestmark = pytest.mark.integration

#: grocery items in the bundled encoder's vocabulary (Complete Journey departments, commodities
#: and manufacturer ids), so embeddings come from content; an out-of-vocabulary catalog would be
#: embedded from its id buckets alone
DEPARTMENTS = ["grocery", "produce", "drug gm", "meat", "deli"]
COMMODITIES = [
    "soft drinks", "bag snacks", "cheese", "soup", "yogurt", "coffee", "cold cereal",
    "frozen pizza", "beef", "cookies/cones", "baked bread/buns/rolls", "candy - packaged",
    "domestic wine", "beers/ales", "vegetables - shelf stable", "baby foods", "lunchmeat",
    "condiments/sauces", "dog foods", "cat food", "vitamins", "oral hygiene products",
    "hair care products", "pastry", "floral", "canned juices", "spices & extracts", "cakes",
]  # fmt: skip
MANUFACTURERS = ["69", "5423", "2", "764", "1407"]


def grocery(n: int = 90) -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"g-{i}",
            "ts": 1,
            "title": f"{COMMODITIES[i % len(COMMODITIES)].title()} {i}",
            "attributes": {
                "category": [DEPARTMENTS[i % 5], COMMODITIES[i % len(COMMODITIES)]],
                "brand": "National" if i % 2 else "Private",
                "manufacturer": MANUFACTURERS[i % 5],
            },
            "flags": {"deal": i % 6 == 0, "new": False},
        }
        for i in range(n)
    ]


CATALOG = grocery()
ITEMS = {m["item_id"]: m for m in CATALOG}


def build_lookup(messages: list[dict[str, Any]]) -> QueryTargetLookup:
    ids = [str(m["item_id"]) for m in messages]
    return QueryTargetLookup(ids, OnnxItemEncoder().embed(messages), k=20).build()


def new_item_like(lookup: QueryTargetLookup) -> dict[str, Any]:
    """A new product with the content of the catalog's most frequent target (only its id and
    title differ): the model places such content in many rows, so where it lands is checkable."""
    counts = np.bincount(
        np.concatenate([lookup.rows[r][lookup.rows[r] >= 0] for r in ("view", "buy")]),
        minlength=len(lookup),
    )
    hub = lookup.ids[int(np.argmax(counts))]
    return {
        **ITEMS[hub],
        "item_id": "g-new",
        "title": "Novel",
        "flags": {"deal": False, "new": True},
    }


def expected_rows(root: Path, new: dict[str, Any], role: str = "view") -> dict[str, list[str]]:
    """Rows the worker should hold after the new item arrived: the published version plus an
    incremental upsert of the new item, computed here with the same bundled encoder."""
    lookup = lookup_store.load_current(root)
    assert lookup is not None, "the worker should have built and published the lookup"
    lookup.upsert([new["item_id"]], OnnxItemEncoder().embed([new]))
    return {i: [lookup.ids[t] for t in lookup.related(p, role)[0]] for i, p in lookup.index.items()}


async def answer(reader: TopicReader, event_id: str) -> dict[str, Any]:
    return await reader.wait_for(lambda m: m["trigger"]["event_id"] == event_id, timeout=60)


def ids(message: dict[str, Any]) -> list[str]:
    return [it["item_id"] for it in message["items"]]


def test_new_item_and_stock_flow_through_the_lookup(broker: Any, tmp_path: Path) -> None:
    root = tmp_path / "shared-lookup"
    dep = new_deployment(broker, tmp_path, RECSTREAM_LOOKUP_DIR=str(root))
    dep.produce([("catalog", m) for m in CATALOG])
    worker = dep.worker("w").start()
    try:
        worker.wait_ready()
        assert lookup_store.versions(root) == [1]  # built from the bundled encoder, published
        published = lookup_store.load_current(root)
        assert published is not None
        new = new_item_like(published)
        asyncio.run(_new_item_flow(dep, new, expected_rows(root, new)))
        info = worker.metrics()
        assert info['recstream_model_info{model="pfeed+cooccurrence",version="v1"}'] == 1
    finally:
        worker.stop()


async def _new_item_flow(dep: Deployment, new: dict[str, Any], rows: dict[str, list[str]]) -> None:
    # the query whose row ranks the new item highest: the item must be there on content alone
    query = min(
        (q for q in rows if q != "g-new" and "g-new" in rows[q]),
        key=lambda q: rows[q].index("g-new"),
    )
    assert rows[query].index("g-new") < 5, "a content copy of a hub should be a close target"
    title = ITEMS[query]["title"]
    async with TopicReader(dep.settings, "recommendations") as reader:
        await produce(dep.settings, [("catalog", {**new, "ts": now_ms()})])
        # a user whose only query is the new item: candidates from its own rows
        first = event("clicks", "u-pf-new", item_id="g-new")
        await produce(dep.settings, [first])
        got = await answer(reader, first[1]["event_id"])
        related = [it for it in got["items"] if any("'Novel'" in r for r in it["reasons"])]
        assert related and all(it["item_id"] in rows["g-new"] for it in related)
        # a user who viewed the query item: the new item entered its row
        second = event("clicks", "u-pf-q", item_id=query)
        await produce(dep.settings, [second])
        got = await answer(reader, second[1]["event_id"])
        entry = next(it for it in got["items"] if it["item_id"] == "g-new")
        assert any(f"'{title}'" in r and "viewed" in r for r in entry["reasons"])
        # out of stock: the holder is refreshed without it, and so is every later list
        out = {"event_id": "pf-out", "item_id": "g-new", "ts": now_ms(), "available": 0}
        await produce(dep.settings, [("stock", out)])
        refreshed = await answer(reader, "pf-out")
        assert refreshed["user_id"] == "u-pf-q" and "g-new" not in ids(refreshed)
        third = event("clicks", "u-pf-q", item_id=query)
        await produce(dep.settings, [third])
        assert "g-new" not in ids(await answer(reader, third[1]["event_id"]))
        back = {"event_id": "pf-back", "item_id": "g-new", "ts": now_ms(), "available": 3}
        fourth = event("clicks", "u-pf-q", item_id=query)
        await produce(dep.settings, [("stock", back)])
        await asyncio.sleep(1.0)  # stock is replicated, not ordered with the user's events
        await produce(dep.settings, [fourth])
        assert "g-new" in ids(await answer(reader, fourth[1]["event_id"]))
        # reasons name the bought query item
        order = event("orders", "u-pf-buy", items=[{"item_id": "g-new", "quantity": 1}])
        await produce(dep.settings, [order])
        got = await answer(reader, order[1]["event_id"])
        assert any("'Novel'" in r and "bought" in r for it in got["items"] for r in it["reasons"])
