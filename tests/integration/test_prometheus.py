"""Dashboards and alert rules against a real Prometheus scraping a live worker (issue 11).

A worker processes real-looking traffic (three feeds, carts, orders, searches, a stock-out, a
malformed message and an unknown item every wave); Debian's ``prometheus`` binary scrapes it
every second with the shipped alert rules loaded. Every PromQL expression of every dashboard
panel and alert rule then goes through Prometheus' HTTP API: each must parse, and every panel
target must return at least one finite sample.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.dashboards import all_panel_targets, load_dashboards, render_all
from stream.dashboards_live import EXPERIMENT
from stream.local_prometheus import ALERT_RULES, LocalPrometheus, running_prometheus, scrape_config
from stream.tools import TopicReader, latest_recommendations

pytestmark = pytest.mark.integration

CATEGORIES = [["clothing", "trousers"], ["clothing", "shirts"], ["shoes", "boots"], ["home"]]
WAVES = 8
USERS = 24
_ids = itertools.count()


def catalog(n: int = 80) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "catalog",
            {
                "item_id": f"sku-{i}",
                "ts": 1,
                "title": f"Item {i}",
                "attributes": {
                    "category": CATEGORIES[i % 4],
                    "brand": f"brand-{i % 5}",
                    "colour": ["navy", "red", "black"][i % 3],
                    "price": 10 + i,
                },
                "flags": {"deal": i % 3 == 0, "new": i % 4 == 0},
            },
        )
        for i in range(n)
    ]


def wave(n: int) -> list[tuple[str, dict[str, Any]]]:
    """One burst of user traffic; the unknown item is dead-lettered by the worker."""
    now = int(time.time() * 1000)
    out: list[tuple[str, dict[str, Any]]] = []
    for u in range(USERS):
        user, item = f"user-{u}", f"sku-{(u * 7 + n) % 80}"
        base = {"user_id": user, "ts": now}
        out.append(("clicks", {**base, "event_id": f"e{next(_ids)}", "item_id": item}))
        out.append(
            ("dwell", {**base, "event_id": f"e{next(_ids)}", "item_id": item, "dwell_ms": 9000})
        )
        if u % 3 == 0:
            out.append(
                ("carts", {**base, "event_id": f"e{next(_ids)}", "item_id": item, "action": "add"})
            )
        if u % 4 == 0:
            order = {
                **base,
                "event_id": f"e{next(_ids)}",
                "items": [{"item_id": item, "quantity": 1}],
            }
            out.append(("orders", order))
        if u % 5 == 0:
            search = {"query": "boots", "filters": {"colour": "navy"}}
            out.append(("searches", {**base, "event_id": f"e{next(_ids)}", **search}))
    out.append(
        (
            "clicks",
            {"event_id": f"e{next(_ids)}", "user_id": "user-0", "item_id": "nope", "ts": now},
        )
    )
    return out


def panel_failures(prom: LocalPrometheus) -> list[str]:
    """Every panel target that errors or has no finite sample now."""
    failures = []
    for name, panel, target in all_panel_targets():
        try:
            result = prom.api.query(target.expr)
        except Exception as exc:
            failures.append(f"{name}/{panel.title}: {target.expr}: {exc}")
            continue
        finite = [r for r in result if math.isfinite(float(r["value"][1]))]
        if not finite:
            failures.append(f"{name}/{panel.title}: {target.expr}: no finite data ({result})")
    return failures


def _held_item(settings: Any, user: str) -> str:
    """The first item of the user's newest list, once they have one: a slow worker may not
    have answered them yet (a fallback item they did not hold gave no refresh at load 10)."""

    async def first_list() -> None:
        async with TopicReader(settings, "recommendations") as reader:
            await reader.wait_for(lambda m: m["user_id"] == user and m["feed"] == "for_you", 60)

    asyncio.run(first_list())
    held = asyncio.run(latest_recommendations(settings, user))
    assert held and held["items"], held
    return str(held["items"][0]["item_id"])


@pytest.fixture(scope="module")
def scraped(deployment: Any) -> Iterator[tuple[LocalPrometheus, Any]]:
    deployment.produce(catalog())
    worker = deployment.worker("obs", RECSTREAM_FEEDS="for_you,deals_for_you,new_for_you")
    worker.start().wait_ready()
    deployment.produce(EXPERIMENT, raw=True)  # A/B variants and a shadow: their panels need data
    with running_prometheus(scrape_config([f"127.0.0.1:{worker.metrics_port}"], 1.0)) as prom:
        for n in range(WAVES):  # counters need increases between scrapes for rate()
            deployment.produce(wave(n))
            deployment.produce([("clicks", (b"user-1", b"{not json"))], raw=True)
            if n == WAVES // 2:  # an item a user holds goes out of stock: a refresh
                item = _held_item(deployment.settings, "user-1")
                deployment.produce(
                    [("stock", {"event_id": "s1", "item_id": item, "ts": 2, "available": 0})]
                )
            time.sleep(1.0)
        deadline = time.monotonic() + 30.0
        while panel_failures(prom) and time.monotonic() < deadline:
            time.sleep(1.0)
        yield prom, worker


def test_every_dashboard_panel_parses_and_shows_data(scraped: tuple[LocalPrometheus, Any]) -> None:
    prom, _ = scraped
    targets = list(all_panel_targets())
    assert len({name for name, _, _ in targets}) == 3
    assert panel_failures(prom) == []


def test_every_alert_rule_parses_and_evaluates(scraped: tuple[LocalPrometheus, Any]) -> None:
    prom, _ = scraped
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    for rule in rules:
        prom.api.query(rule["expr"])  # raises on a parse or evaluation error
    loaded = {rule["name"]: rule for rule in prom.api.rules()}
    assert set(loaded) == {rule["alert"] for rule in rules}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
    # a healthy worker pages nobody
    firing = prom.api.query('ALERTS{alertstate="firing", severity="page"}')
    assert firing == []


def test_metrics_reflect_the_traffic(scraped: tuple[LocalPrometheus, Any]) -> None:
    prom, _ = scraped

    def values(expr: str) -> dict[str, float]:
        return {",".join(r["metric"].values()): float(r["value"][1]) for r in prom.api.query(expr)}

    def settled(expr: str, ok: Callable[[dict[str, float]], bool]) -> bool:
        """The last wave may still be in flight and users are counted every 5 s: poll."""
        deadline = time.monotonic() + 20.0
        while not ok(values(expr)) and time.monotonic() < deadline:
            time.sleep(0.5)
        return ok(values(expr))

    every_wave = WAVES  # one unknown item and one malformed message per wave
    assert settled(
        "sum by (reason) (recstream_dead_letters_total)",
        lambda r: r.get("unknown_item") == every_wave and r.get("malformed_json") == every_wave,
    ), values("sum by (reason) (recstream_dead_letters_total)")
    feeds = values("sum by (feed) (recstream_lists_emitted_total)")
    assert set(feeds) == {"for_you", "deals_for_you", "new_for_you"}
    lag_by_consumer = values("count by (consumer) (recstream_consumer_lag_messages)")
    assert set(lag_by_consumer) == {"group", "replica"}
    assert settled("sum(recstream_state_users)", lambda r: r[""] == USERS)  # user-0 … user-23
    assert settled("sum(recstream_stock_refreshes_total)", lambda r: r.get("", 0) >= 1)
    assert values("sum(recstream_qdrant_points_written_total)")[""] >= USERS


def test_render_draws_every_dashboard(scraped: tuple[LocalPrometheus, Any], tmp_path: Path) -> None:
    prom, _ = scraped
    paths = render_all(prom.api.url, tmp_path, minutes=1.0)
    assert [p.stem for p in paths] == [d.name for d in load_dashboards()]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
