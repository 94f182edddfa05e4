"""A seeded synthetic shop with continuous new arrivals, in the generic dataset format.

The bundled datasets have a complete catalog before the first event, so nothing there shows what
a content lookup that follows the catalog is worth. This shop does: a first assortment at the
start, then weekly drops announced as ``catalog`` messages in the event stream (``flags.new``
true), and shoppers who like a few commodities and prefer what arrived recently in them. Online
co-occurrence cannot relate a dropped item to anything until someone buys it; its content can.

Item content is a real shop export: the attributes of Complete Journey products (category path
department / commodity / sub-commodity, National/Private brand, manufacturer, package size), the
tokens the bundled encoder reads, drawn seeded by ``sample_products``. Item ids are this shop's
own (``n<i>``), so the encoder's id buckets carry nothing it learned about those products; a price
is added as a real export would have one. Run as a module to write a dataset folder::

    python -m tests.unit.arrivals_shop DIR [--users N] [--items N] [--weeks N] [--seed N]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import numpy as np

from stream.datasets.completejourney import sample_products
from stream.datasets.generic import write_dataset

T0 = 1_600_000_000_000
DAY = 86_400_000
WEEK = 7 * DAY
#: Age (days) over which a shopper's preference for a new arrival decays (e-folding).
FRESH_DAYS = 7.0
#: How much more a just-dropped item is wanted than an old one of the same popularity.
FRESH_BOOST = 12.0


def _commodity(message: dict[str, Any]) -> str | None:
    path = message.get("attributes", {}).get("category") or []
    return str(path[1]) if len(path) >= 2 else None


def _products(items: int, commodities: int, seed: int) -> list[dict[str, Any]]:
    """``items`` real products from the ``commodities`` most frequent commodities of a sample."""
    pool = [m for m in sample_products(items * 6, seed=seed) if _commodity(m)]
    by_commodity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in pool:
        by_commodity[str(_commodity(message))].append(message)
    top = sorted(by_commodity, key=lambda c: (-len(by_commodity[c]), c))[:commodities]
    chosen = [m for c in top for m in by_commodity[c]]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(chosen))[:items]
    return [chosen[i] for i in order]


def make_arrivals_shop(
    users: int = 300, items: int = 900, weeks: int = 8, commodities: int = 24, seed: int = 7
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(catalog at the start, time-ordered events with the weekly catalog drops among them)."""
    rng = np.random.default_rng(seed)
    products = _products(items, commodities, seed)
    n = len(products)
    # a third of the assortment is there from the start, the rest arrives in weekly drops
    arrival = np.where(rng.random(n) < 1 / 3, 0, rng.integers(1, weeks, n)) * WEEK
    arrival = arrival + np.where(arrival > 0, rng.integers(0, DAY, n), 0)
    price = np.round(rng.lognormal(1.2, 0.6, n), 2)
    messages = []
    for i, product in enumerate(products):
        attrs = {**product.get("attributes", {}), "price": float(price[i])}
        ts = T0 + int(arrival[i])
        flags = {"deal": False, "new": bool(arrival[i] > 0)}
        title = product.get("title", "")
        messages.append({"topic": "catalog", "item_id": f"n{i}", "ts": ts, "title": title,
                         "attributes": attrs, "flags": flags})  # fmt: skip
    catalog = [m for m, a in zip(messages, arrival, strict=True) if a == 0]
    drops = [m for m, a in zip(messages, arrival, strict=True) if a > 0]
    commodity = np.array([_commodity(p) for p in products])
    events = drops + _shopping(rng, users, weeks, commodity, arrival, price)
    events.sort(key=lambda e: (e["ts"], e["topic"] != "catalog", e.get("event_id", "")))
    return catalog, events


def _shopping(
    rng: np.random.Generator,
    users: int,
    weeks: int,
    commodity: np.ndarray,
    arrival: np.ndarray,
    price: np.ndarray,
) -> list[dict[str, Any]]:
    """Every shopper's visits over the weeks, each among the items of the commodities they like."""
    kinds = sorted(set(commodity.tolist()))
    pop = np.minimum(rng.zipf(1.8, commodity.size).astype(float), 50.0)
    events: list[dict[str, Any]] = []
    for u in range(users):
        liked = rng.choice(kinds, size=int(rng.integers(2, 4)), replace=False)
        pool = np.flatnonzero(np.isin(commodity, liked))
        visits = np.sort(rng.uniform(0, weeks * WEEK, int(rng.integers(6, 16))))
        for start in visits:
            events += _session(rng, f"u{u}", T0 + int(start), pool, pop, arrival, price)
    return events


def _session(
    rng: np.random.Generator,
    user: str,
    ts: int,
    pool: np.ndarray,
    pop: np.ndarray,
    arrival: np.ndarray,
    price: np.ndarray,
) -> list[dict[str, Any]]:
    """A browse (looks, nothing bought) or a basket, drawn by popularity times freshness among
    the items already on sale: what is bought was not just looked at in the same visit, so a
    list has to find it rather than repeat the last clicks."""
    on_sale = pool[T0 + arrival[pool] <= ts]
    if on_sale.size == 0:
        return []
    age_days = (ts - T0 - arrival[on_sale]) / DAY
    weight = pop[on_sale] * (1.0 + FRESH_BOOST * np.exp(-age_days / FRESH_DAYS))
    size = min(on_sale.size, int(rng.integers(1, 4)))
    picked = rng.choice(on_sale, size=size, replace=False, p=weight / weight.sum())
    if rng.random() < 0.4:
        out = []
        for item in picked:
            ts += int(rng.uniform(5, 90) * 1000)
            out.append({"topic": "clicks", "event_id": f"{user}-{ts}", "user_id": user, "ts": ts,
                        "item_id": f"n{item}"})  # fmt: skip
        return out
    return [{"topic": "orders", "event_id": f"{user}-{ts}-o", "user_id": user, "ts": ts,
             "items": [{"item_id": f"n{i}", "quantity": 1, "price": float(price[i])}
                       for i in picked]}]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--items", type=int, default=900)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    catalog, events = make_arrivals_shop(args.users, args.items, args.weeks, seed=args.seed)
    meta = write_dataset(args.out, catalog, events, meta={"source": "tests/unit/arrivals_shop.py"})
    print(meta)


if __name__ == "__main__":
    main()
