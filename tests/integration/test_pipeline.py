"""The core pipeline through a real broker and a real worker process (issue 2)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from stream.adapters.validation import get_validators
from stream.tools import TopicReader
from tests.conftest import new_deployment

pytestmark = pytest.mark.integration

CATEGORIES = [
    ["clothing", "trousers"],
    ["clothing", "shirts"],
    ["shoes", "sneakers"],
    ["shoes", "boots"],
    ["home", "lamps"],
]
BRANDS = ["acme", "zenith", "nova", "orbit"]
COLOURS = ["navy", "red", "black"]
SIZES = ["S", "M", "L"]
_ids = itertools.count()


def make_catalog(n: int = 120) -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"sku-{i}",
            "ts": 1,
            "title": f"Item {i}",
            "attributes": {
                "category": CATEGORIES[i % 5],
                "brand": BRANDS[(i // 5) % 4],
                "colour": COLOURS[i % 3],
                "size": SIZES[(i // 3) % 3],
                "price": 10 + (i % 40) * 3,
            },
            "flags": {"deal": i % 7 == 0, "new": i % 11 == 0},
        }
        for i in range(n)
    ]


CATALOG = make_catalog()
ITEMS = {m["item_id"]: m for m in CATALOG}


def now_ms() -> int:
    return int(time.time() * 1000)


def event(topic: str, user: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return topic, {"event_id": f"ev-{next(_ids)}", "user_id": user, "ts": now_ms(), **fields}


@pytest.fixture(scope="module", params=["aiokafka", "faust"])
def live(
    request: pytest.FixtureRequest, broker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A worker whose user topics are read by the bare consumer group (the default) or by the
    Faust agent it replaced (``RECSTREAM_USER_CONSUMER=faust``): every test runs on both."""
    base = tmp_path_factory.mktemp(f"deploy-{request.param}")
    deployment = new_deployment(broker, base, RECSTREAM_USER_CONSUMER=request.param)
    try:
        deployment.produce([("catalog", m) for m in CATALOG])
        worker = deployment.worker().start()
        worker.wait_ready()
        yield deployment, worker
    finally:
        for w in deployment.workers:
            w.stop()


def send_and_wait(
    dep: Any,
    events: list[tuple[str, Any]],
    raw: bool = False,
    match: Callable[[dict[str, Any]], bool] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Produce events, return the first recommendation answering the last one (or ``match``)."""
    last_id = events[-1][1]["event_id"] if not raw else None
    predicate = match or (lambda m: m["trigger"]["event_id"] == last_id)

    async def run() -> dict[str, Any]:
        async with TopicReader(dep.settings, "recommendations") as reader:
            await reader.poll(10)
            from stream.tools import produce

            await produce(dep.settings, events, raw=raw)
            return await reader.wait_for(predicate, timeout)

    return asyncio.run(run())


def attr(item_id: str, name: str) -> Any:
    return ITEMS[item_id]["attributes"][name]


def test_clicks_give_a_schema_valid_list_reflecting_clicked_brand_and_category(live: Any) -> None:
    dep, _ = live
    clicked = [
        i
        for i in ITEMS
        if attr(i, "brand") == "zenith" and attr(i, "category") == ["shoes", "boots"]
    ][:3]
    assert len(clicked) == 3
    rec = send_and_wait(dep, [event("clicks", "u-brand", item_id=i) for i in clicked])
    msg = {k: v for k, v in rec.items() if not k.startswith("_")}
    get_validators().validate("recommendations", msg)
    assert rec["user_id"] == "u-brand" and rec["feed"] == "for_you"
    assert rec["trigger"]["topic"] == "clicks" and rec["emitted_at"] >= rec["trigger"]["ts"]
    top = [it["item_id"] for it in rec["items"][:10]]
    matching = [i for i in top if attr(i, "brand") == "zenith" or attr(i, "category")[1] == "boots"]
    # 4 brands x 5 categories: a list blind to the clicks would match ~40 % of the time
    assert len(matching) >= 7, (top, rec["items"][0]["reasons"])
    assert all(it["reasons"] for it in rec["items"])


def _stock_out(dep: Any, user: str, brand: str, ts: int) -> tuple[list[str], str, dict[str, Any]]:
    """``user`` clicks three items of ``brand`` and one category; the first item of their list
    that shares both goes out of stock at ``ts``: (the clicked items, that item, the list the
    stock-out refreshed). A match of the clicks, not the list's first item: that could be a
    popular one that happened to lead (trending and co-occurrence move while the worker serves
    other tests), which once restocked did not always make the list again (seen under load)."""
    kind = attr(next(i for i in ITEMS if attr(i, "brand") == brand), "category")
    alike = [i for i in ITEMS if attr(i, "brand") == brand and attr(i, "category") == kind]
    clicked = alike[:3]
    rec = send_and_wait(dep, [event("clicks", user, item_id=i) for i in clicked])
    victim = next(i for i in item_ids(rec) if i in alike[3:])
    stock_event = {"event_id": f"st-{next(_ids)}", "item_id": victim, "ts": ts, "available": 0}
    refreshed = send_and_wait(
        dep,
        [("stock", stock_event)],
        match=lambda m: m["user_id"] == user and m["trigger"]["topic"] == "stock",
    )
    assert victim not in [it["item_id"] for it in refreshed["items"]]
    assert refreshed["trigger"]["event_id"] == stock_event["event_id"]
    return clicked, victim, refreshed


def test_out_of_stock_item_leaves_the_list_without_a_user_event(live: Any) -> None:
    dep, _ = live
    clicked, victim, _ = _stock_out(dep, "u-stock", "nova", now_ms())
    # a click later the item stays out
    later = send_and_wait(dep, [event("clicks", "u-stock", item_id=clicked[0])])
    assert victim not in [it["item_id"] for it in later["items"]]
    # restock: eligible again, and this user's strongest candidate comes back
    restock = {"event_id": f"st-{next(_ids)}", "item_id": victim, "ts": now_ms(), "available": 5}
    dep.produce([("stock", restock)])
    deadline = time.monotonic() + 20
    while True:
        again = send_and_wait(dep, [event("clicks", "u-stock", item_id=clicked[1])])
        if victim in [it["item_id"] for it in again["items"]]:
            break
        assert time.monotonic() < deadline, "restocked item never came back"


def test_a_restocked_item_returns_to_the_lists_that_lost_it_without_a_user_event(
    live: Any,
) -> None:
    """The victim matches the user's clicks on brand and category (not a popular item that
    happened to lead: trending and co-occurrence move while the worker serves other tests),
    so it is still among their best when it comes back."""
    dep, _ = live
    user = "u-restock"
    clicked = [
        i for i in ITEMS if attr(i, "brand") == "orbit" and attr(i, "category")[1] == "lamps"
    ]
    rec = send_and_wait(dep, [event("clicks", user, item_id=i) for i in clicked[:3]])
    victim = next(i for i in item_ids(rec) if i in clicked[3:])  # the same brand and category
    out = {"event_id": f"st-{next(_ids)}", "item_id": victim, "ts": now_ms(), "available": 0}
    gone = send_and_wait(dep, [("stock", out)], match=lambda m: answers(m, user, out["event_id"]))
    assert victim not in item_ids(gone)
    restock = {**out, "event_id": f"st-{next(_ids)}", "ts": now_ms() + 1, "available": 5}
    back = send_and_wait(
        dep, [("stock", restock)], match=lambda m: answers(m, user, restock["event_id"])
    )
    assert back["trigger"]["topic"] == "stock" and victim in item_ids(back)


def answers(message: dict[str, Any], user: str, event_id: str) -> bool:
    return bool(message["user_id"] == user and message["trigger"]["event_id"] == event_id)


def test_a_stock_out_stamped_ahead_still_refreshes_its_holders_lists(live: Any) -> None:
    """The stock topic's clock may run ahead of the worker's: the refresh the worker sends its
    holders is stamped no later than its own clock, so it is ranked now, not dead-lettered as
    ``ts_ahead`` (which left the item in their lists until their next event)."""
    dep, _ = live
    _, victim, refreshed = _stock_out(dep, "u-stock-ahead", "orbit", now_ms() + 5 * 3_600_000)
    assert refreshed["trigger"]["ts"] <= now_ms()
    restock = {"event_id": f"st-{next(_ids)}", "item_id": victim, "ts": now_ms(), "available": 5}
    dep.produce([("stock", restock)])  # (the worker is shared with the next tests)


def test_a_deleted_item_leaves_its_holders_lists_without_a_user_event(live: Any) -> None:
    """Deleting a product from the catalog acts on the lists holding it as a stock-out."""
    dep, _ = live
    clicked = [i for i in ITEMS if attr(i, "brand") == "zenith"][3:6]
    rec = send_and_wait(dep, [event("clicks", "u-deleted", item_id=i) for i in clicked])
    victim = rec["items"][0]["item_id"]
    deletion = {**ITEMS[victim], "event_id": f"del-{next(_ids)}", "ts": now_ms(), "deleted": True}
    restore = {**ITEMS[victim], "event_id": f"restore-{next(_ids)}", "ts": now_ms() + 1}
    try:
        refreshed = send_and_wait(
            dep,
            [("catalog", deletion)],
            match=lambda m: (
                m["user_id"] == "u-deleted" and m["trigger"]["event_id"] == deletion["event_id"]
            ),
        )
        assert victim not in [it["item_id"] for it in refreshed["items"]]
        assert refreshed["trigger"]["topic"] == "stock"  # the refresh topic's contract
        # restored: back in the lists that lost it, as a restock
        back = send_and_wait(
            dep,
            [("catalog", restore)],
            match=lambda m: (
                m["user_id"] == "u-deleted" and m["trigger"]["event_id"] == restore["event_id"]
            ),
        )
        assert victim in item_ids(back)
    finally:  # restored in any case (the worker is shared with the next tests)
        dep.produce([("catalog", restore)])


def test_an_older_stock_out_arriving_after_a_restock_does_not_hide_the_item(live: Any) -> None:
    """Two systems publish one item's stock: its "out", stamped before the restock, is
    delivered after it. The latest level by ``ts`` wins, so the item stays in the lists and the
    skipped message is counted."""
    dep, worker = live
    clicked, victim, _ = _stock_out(dep, "u-stale-stock", "acme", now_ms())
    out_ts = now_ms()
    restock = {"event_id": f"st-{next(_ids)}", "item_id": victim, "ts": out_ts + 1, "available": 5}
    dep.produce([("stock", restock)])
    deadline = time.monotonic() + 20
    while victim not in item_ids(
        send_and_wait(dep, [event("clicks", "u-stale-stock", item_id=clicked[1])])
    ):
        assert time.monotonic() < deadline, "restocked item never came back"
    before = worker.metrics().get("recstream_stale_stock", 0.0)
    late = {"event_id": f"st-{next(_ids)}", "item_id": victim, "ts": out_ts, "available": 0}
    dep.produce([("stock", late)])
    deadline = time.monotonic() + 20
    while worker.metrics().get("recstream_stale_stock", 0.0) < before + 1:
        assert time.monotonic() < deadline, "the late stock-out was never counted as stale"
        time.sleep(0.3)
    after = send_and_wait(dep, [event("clicks", "u-stale-stock", item_id=clicked[1])])
    assert victim in item_ids(after)


def item_ids(rec: dict[str, Any]) -> list[str]:
    return [it["item_id"] for it in rec["items"]]


def test_returned_item_never_returns_and_its_features_drop(live: Any) -> None:
    dep, _ = live
    orbit = [i for i in ITEMS if attr(i, "brand") == "orbit" and attr(i, "category")[0] == "home"]
    acme = [i for i in ITEMS if attr(i, "brand") == "acme" and attr(i, "category")[0] == "home"]
    user = "u-return"
    before = send_and_wait(dep, [event("clicks", user, item_id=i) for i in orbit[:2] + acme[:2]])
    bought = orbit[2]
    send_and_wait(dep, [event("orders", user, items=[{"item_id": bought, "quantity": 1}])])

    def orbit_share(rec: dict[str, Any]) -> float:
        top = [it["item_id"] for it in rec["items"][:10]]
        return sum(attr(i, "brand") == "orbit" for i in top) / len(top)

    after_buy = send_and_wait(dep, [event("clicks", user, item_id=acme[0])])
    returned = send_and_wait(dep, [event("returns", user, item_id=bought, reason="did not fit")])
    assert bought not in [it["item_id"] for it in returned["items"]]
    assert orbit_share(returned) < orbit_share(after_buy), (
        orbit_share(before),
        orbit_share(returned),
    )
    # more interest in that brand later: the returned item itself still never comes back
    later = send_and_wait(dep, [event("clicks", user, item_id=i) for i in orbit[3:6]])
    assert bought not in [it["item_id"] for it in later["items"]]


def test_search_filters_shift_the_next_list(live: Any) -> None:
    dep, _ = live
    user = "u-search"
    mixed = [i for i in ITEMS if attr(i, "category") == ["clothing", "trousers"]][:6]
    before = send_and_wait(dep, [event("clicks", user, item_id=i) for i in mixed])
    after = send_and_wait(
        dep, [event("searches", user, query="trousers", filters={"colour": "navy", "size": "M"})]
    )

    def share(rec: dict[str, Any]) -> float:
        top = [it["item_id"] for it in rec["items"][:10]]
        return sum(attr(i, "colour") == "navy" and attr(i, "size") == "M" for i in top) / len(top)

    assert share(after) > share(before)
    assert share(after) >= 0.5, [it["item_id"] for it in after["items"][:10]]


BAD_INPUTS: list[tuple[str, bytes | None, bytes, str]] = [
    ("clicks", b"u-bad", b"{not json", "malformed_json"),
    (
        "clicks",
        b"u-bad",
        orjson.dumps({"event_id": "x1", "item_id": "sku-1", "ts": 1}),
        "schema_violation",
    ),
    (
        "clicks",
        b"u-bad",
        orjson.dumps({"event_id": "x2", "user_id": "u-bad", "item_id": "sku-1", "ts": "yesterday"}),
        "wrong_type",
    ),
    ("clicks", b"u-bad", orjson.dumps([1, 2, 3]), "wrong_type"),
    (
        "clicks",
        b"u-bad",
        orjson.dumps({"event_id": "x3", "user_id": "u-bad", "item_id": "nope", "ts": 1}),
        "unknown_item",
    ),
    (
        "orders",
        b"u-bad",
        orjson.dumps(
            {
                "event_id": "x4",
                "user_id": "u-bad",
                "ts": 1,
                "items": [{"item_id": "sku-1"}, {"item_id": "ghost"}],
            }
        ),
        "unknown_item",
    ),
    ("clicks", b"u-bad", b'{"pad": "' + b"x" * 70_000 + b'"}', "oversize"),
    (
        "clicks",
        b"someone-else",
        orjson.dumps({"event_id": "x5", "user_id": "u-bad", "item_id": "sku-1", "ts": 1}),
        "key_mismatch",
    ),
    (
        "stock",
        b"sku-1",
        orjson.dumps({"event_id": "x6", "item_id": "sku-1", "ts": 1, "available": -3}),
        "schema_violation",
    ),
    ("catalog", b"sku-x", b"\xff\xfe binary", "malformed_json"),
    (
        "clicks",
        b"u-bad",
        orjson.dumps(
            {"event_id": "x7", "user_id": "u-bad", "item_id": "sku-1", "ts": now_ms() * 1000}
        ),
        "ts_ahead",  # microseconds for milliseconds
    ),
]


def test_bad_input_goes_to_dead_letters_and_the_worker_survives(live: Any) -> None:
    dep, worker = live
    for topic, key, value, _ in BAD_INPUTS:
        dep.produce([(topic, (key, value))], raw=True)

    async def collect() -> list[dict[str, Any]]:
        async with TopicReader(dep.settings, "dead-letters") as reader:
            deadline = time.monotonic() + 30
            while len(reader.messages) < len(BAD_INPUTS) and time.monotonic() < deadline:
                await reader.poll(100)
            return reader.messages

    dead = asyncio.run(collect())
    validators = get_validators()
    for message in dead:
        validators.validate("dead-letters", {k: v for k, v in message.items() if k[0] != "_"})
    got = sorted((m["topic"].removeprefix(dep.settings.topic_prefix), m["reason"]) for m in dead)
    assert got == sorted((t, r) for t, _, _, r in BAD_INPUTS)
    binary = next(m for m in dead if m["raw_encoding"] == "base64")
    import base64

    assert base64.b64decode(binary["raw"]) == b"\xff\xfe binary"
    # the worker is alive and still answering
    assert worker.process.poll() is None
    rec = send_and_wait(dep, [event("clicks", "u-after-bad", item_id="sku-3")])
    assert rec["items"]
    # accounting: consumed = processed + dead-lettered, per topic
    metrics = worker.metrics()
    for topic in ("clicks", "orders", "stock", "catalog"):
        consumed = metrics.get(f'recstream_events_consumed_total{{topic="{topic}"}}', 0.0)
        processed = metrics.get(f'recstream_events_processed_total{{topic="{topic}"}}', 0.0)
        dead_n = sum(
            v
            for k, v in metrics.items()
            if k.startswith("recstream_dead_letters_total{") and f'topic="{topic}"' in k
        )
        assert consumed == processed + dead_n, (topic, consumed, processed, dead_n)
        assert consumed > 0


def test_an_event_from_the_future_is_not_applied_and_the_profile_goes_on(live: Any) -> None:
    """A click dated in microseconds is dead-lettered (``ts_ahead``); the user's next click
    continues the same profile, one version on, as if it had not been sent."""
    dep, _ = live
    first = send_and_wait(dep, [event("clicks", "u-clock", item_id="sku-2")])
    ahead = event("clicks", "u-clock", item_id="sku-3")
    ahead[1]["ts"] *= 1000
    dep.produce([ahead])
    later = send_and_wait(dep, [event("clicks", "u-clock", item_id="sku-4")])
    assert later["state_version"] == first["state_version"] + 1


def test_an_order_sent_twice_is_applied_once(live: Any) -> None:
    """A producer's re-send (same event id, a new record) is skipped and counted: the user's
    next click is one state version on from the order's list, not two."""
    dep, worker = live
    order = event("orders", "u-resent", items=[{"item_id": "sku-5", "quantity": 2}])
    first = send_and_wait(dep, [order])
    dep.produce([order])  # the same message again: a new offset, the same event
    later = send_and_wait(dep, [event("clicks", "u-resent", item_id="sku-6")])
    assert later["state_version"] == first["state_version"] + 1
    metrics = worker.metrics()
    assert metrics['recstream_events_duplicate_total{topic="orders"}'] == 1.0
    consumed = metrics['recstream_events_consumed_total{topic="orders"}']
    processed = metrics['recstream_events_processed_total{topic="orders"}']
    dead = sum(
        v
        for k, v in metrics.items()
        if k.startswith("recstream_dead_letters_total{") and 'topic="orders"' in k
    )
    assert consumed == processed + dead  # the copy is processed (skipped), not dead-lettered
