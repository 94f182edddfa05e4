"""More seeded synthetic shops, each behaving unlike the bundled data and ``synthetic_shops``.

Used to play the reviewer who runs ``recstream eval --dataset DIR`` on a shop type that is not
in the repository (``python -m tests.unit.more_shops OUT_ROOT`` writes one generic folder per
kind), and by unit tests that pin the losses found that way. Kinds:

* ``electronics``: long browsing sessions, one main purchase, its accessories bought in a
  later session, no re-buy, some returns.
* ``staples``: every user re-buys a few personal staples on a personal cycle (days), plus
  promoted items bought once; no views.
* ``marketplace``: a large catalog, most users with one to three events (cold users).
* ``bare``: purchases only, catalog records without any attribute.
* ``browse``: views dominate; a cart now and then and rare orders.
* ``heavy``: a few heavy users make most of the events.
* ``ties``: whole sessions share one timestamp (duplicate ts everywhere).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

T0 = 1_600_000_000_000
DAY = 86_400_000
MIN = 60_000

Msg = dict[str, Any]


def catalog_of(
    rng: np.random.Generator, items: int, categories: int, bare: bool = False
) -> tuple[list[Msg], np.ndarray, np.ndarray]:
    """(catalog messages, category per item, price per item)."""
    cat = rng.integers(0, categories, items)
    price = np.round(rng.lognormal(3, 0.8, items), 2)
    if bare:
        bare_items = [{"topic": "catalog", "item_id": f"it{i}", "ts": T0} for i in range(items)]
        return bare_items, cat, price
    catalog = [
        {
            "topic": "catalog",
            "item_id": f"it{i}",
            "ts": T0,
            "title": f"Item {i}",
            "attributes": {"category": [f"cat{cat[i]}"], "price": float(price[i])},
        }
        for i in range(items)
    ]
    return catalog, cat, price


class Stream:
    """Collects events of one shop; ``done`` sorts them and numbers them."""

    def __init__(self) -> None:
        self.events: list[Msg] = []

    def add(self, topic: str, user: str, ts: int, **body: Any) -> None:
        self.events.append({"topic": topic, "event_id": "", "user_id": user, "ts": ts, **body})

    def order(self, user: str, ts: int, items: list[int], price: np.ndarray) -> None:
        lines = [{"item_id": f"it{i}", "quantity": 1, "price": float(price[i])} for i in items]
        self.add("orders", user, ts, items=lines)

    def done(self) -> list[Msg]:
        self.events.sort(key=lambda e: (e["ts"], e["user_id"]))
        for n, event in enumerate(self.events):
            event["event_id"] = f"e{n}"
        return self.events


def _zipf(rng: np.random.Generator, n: int, a: float = 1.5) -> np.ndarray:
    pop = np.minimum(rng.zipf(a, n).astype(float), 300.0)
    return pop / pop.sum()


def _pick(rng: np.random.Generator, pool: np.ndarray, pop: np.ndarray, size: int) -> np.ndarray:
    w = pop[pool] / pop[pool].sum()
    return rng.choice(pool, size=min(size, pool.size), replace=False, p=w)


def _shop(
    rng: np.random.Generator, items: int, cats: int, bare: bool = False, a: float = 1.5
) -> tuple[list[Msg], np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """(catalog, category and price per item, Zipf popularity, items per category): the set-up."""
    catalog, cat, price = catalog_of(rng, items, cats, bare=bare)
    pop = _zipf(rng, items, a)
    return catalog, cat, price, pop, [np.flatnonzero(cat == c) for c in range(cats)]


def electronics(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    rng = np.random.default_rng(seed)
    catalog, _, price, pop, by_cat = _shop(rng, 500, 10)
    # each main item has 3 accessories (from the "accessory" categories 8 and 9)
    acc = {i: rng.choice(np.concatenate(by_cat[8:]), 3, replace=False) for i in range(500)}
    s = Stream()
    for u in range(300):
        user, ts = f"u{u}", T0 + int(rng.uniform(0, 50 * DAY))
        pref = int(rng.integers(0, 8))
        viewed = _pick(rng, by_cat[pref], pop, int(rng.integers(8, 25)))
        for item in viewed:
            ts += int(rng.uniform(10, 120) * 1000)
            s.add("clicks", user, ts, item_id=f"it{item}")
        if rng.random() < 0.6:
            main = int(viewed[int(rng.integers(0, viewed.size))])
            ts += MIN
            s.add("carts", user, ts, item_id=f"it{main}", action="add")
            s.order(user, ts + MIN, [main], price)
            if rng.random() < 0.15:
                s.add("returns", user, ts + int(rng.uniform(2, 14) * DAY), item_id=f"it{main}")
            for _ in range(int(rng.integers(0, 3))):
                ts += int(rng.uniform(0.5, 10) * DAY)
                item = int(rng.choice(acc[main]))
                s.add("clicks", user, ts, item_id=f"it{item}")
                s.order(user, ts + MIN, [item], price)
    return catalog, s.done()


def staples(seed: int = 1, bare: bool = False) -> tuple[list[Msg], list[Msg]]:
    rng = np.random.default_rng(seed)
    catalog, _, price = catalog_of(rng, 400, 15, bare=bare)
    pop = _zipf(rng, 400)
    promo = rng.choice(400, 40, replace=False)
    s = Stream()
    for u in range(250):
        user = f"u{u}"
        mine = _pick(rng, np.arange(400), pop, int(rng.integers(3, 9)))
        cycle = rng.uniform(3, 10, mine.size) * DAY
        due = T0 + rng.uniform(0, 1, mine.size) * cycle
        ts = T0 + int(rng.uniform(0, 3) * DAY)
        while ts < T0 + 60 * DAY:
            basket = [int(i) for i, d in zip(mine, due, strict=True) if d <= ts]
            week = (ts - T0) // (7 * DAY)
            on_promo = promo[(week * 5) % 40 : (week * 5) % 40 + 5]
            if rng.random() < 0.5:
                basket.append(int(rng.choice(on_promo)))
            if rng.random() < 0.3:
                basket.append(int(rng.choice(400, p=pop)))
            basket = list(dict.fromkeys(basket))
            if basket:
                s.order(user, ts, basket, price)
                for n, i in enumerate(mine):
                    if int(i) in basket:
                        due[n] = ts + cycle[n] * rng.uniform(0.8, 1.2)
            ts += int(rng.uniform(2, 5) * DAY)
    return catalog, s.done()


def staples_bare(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    """``staples`` with catalog records that carry no attribute (nothing but ids to go by)."""
    return staples(seed, bare=True)


def _drifting(rng: np.random.Generator, items: int, ts: int, life: float) -> np.ndarray:
    """Popularity at ``ts`` when each item is in fashion for about ``life`` days."""
    peak = T0 + (np.arange(items) * 7919 % items) / items * 60 * DAY
    return np.exp(-(((ts - peak) / (life * DAY)) ** 2))


def trendy(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    """Items are in fashion for a few days each; users buy what is hot, a few times each."""
    rng = np.random.default_rng(seed)
    catalog, cat, price = catalog_of(rng, 300, 10)
    s = Stream()
    for u in range(400):
        prefs = rng.choice(10, 3, replace=False)
        for _ in range(int(rng.integers(1, 5))):
            ts = T0 + int(rng.uniform(0, 60 * DAY))
            w = _drifting(rng, 300, ts, 4.0) * np.where(np.isin(cat, prefs), 3.0, 1.0) + 1e-3
            basket = rng.choice(300, int(rng.integers(1, 3)), replace=False, p=w / w.sum())
            s.order(f"u{u}", ts, [int(i) for i in basket], price)
    return catalog, s.done()


def cold(seed: int = 1, users: int = 3000) -> tuple[list[Msg], list[Msg]]:
    """Every user places one order and is never seen again; what sells drifts over weeks."""
    rng = np.random.default_rng(seed)
    catalog, _, price = catalog_of(rng, 300, 10)
    s = Stream()
    for u in range(users):
        ts = T0 + int(rng.uniform(0, 60 * DAY))
        w = _drifting(rng, 300, ts, 10.0) + 1e-3
        basket = rng.choice(300, int(rng.integers(1, 3)), replace=False, p=w / w.sum())
        s.order(f"u{u}", ts, [int(i) for i in basket], price)
    return catalog, s.done()


def marketplace(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    rng = np.random.default_rng(seed)
    catalog, cat, price, pop, by_cat = _shop(rng, 8000, 60, a=1.3)
    s = Stream()
    for u in range(3000):
        user, ts = f"u{u}", T0 + int(rng.uniform(0, 40 * DAY))
        item = int(rng.choice(8000, p=pop))
        n = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        for step in range(n):
            last = step == n - 1
            if last and rng.random() < 0.7:
                s.order(user, ts, [item], price)
            else:
                s.add("clicks", user, ts, item_id=f"it{item}")
            ts += int(rng.uniform(1, 30) * MIN)
            if rng.random() < 0.6:
                item = int(_pick(rng, by_cat[cat[item]], pop, 1)[0])
    return catalog, s.done()


def bare(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    rng = np.random.default_rng(seed)
    catalog, _, price, pop, by_cat = _shop(rng, 600, 12, bare=True)
    s = Stream()
    for u in range(250):
        user = f"u{u}"
        prefs = rng.choice(12, int(rng.integers(1, 3)), replace=False)
        for _ in range(int(rng.integers(2, 8))):
            ts = T0 + int(rng.uniform(0, 60 * DAY))
            pool = by_cat[int(rng.choice(prefs))]
            s.order(user, ts, [int(i) for i in _pick(rng, pool, pop, int(rng.integers(1, 4)))],
                    price)  # fmt: skip
    return catalog, s.done()


def browse(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    rng = np.random.default_rng(seed)
    catalog, _, price, pop, by_cat = _shop(rng, 600, 12)
    s = Stream()
    for u in range(300):
        user = f"u{u}"
        prefs = rng.choice(12, int(rng.integers(1, 3)), replace=False)
        for _ in range(int(rng.integers(2, 8))):
            ts = T0 + int(rng.uniform(0, 60 * DAY))
            viewed = _pick(rng, by_cat[int(rng.choice(prefs))], pop, int(rng.integers(3, 15)))
            for item in viewed:
                ts += int(rng.uniform(5, 60) * 1000)
                s.add("clicks", user, ts, item_id=f"it{item}")
            if rng.random() < 0.3:
                item = int(rng.choice(viewed))
                s.add("carts", user, ts + 1000, item_id=f"it{item}", action="add")
                if rng.random() < 0.4:
                    s.order(user, ts + 60_000, [item], price)
    return catalog, s.done()


def heavy(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    rng = np.random.default_rng(seed)
    catalog, _, price, pop, by_cat = _shop(rng, 500, 10)
    s = Stream()
    for u in range(200):
        user = f"u{u}"
        sessions = int(rng.integers(40, 80)) if u < 10 else int(rng.integers(1, 4))
        prefs = rng.choice(10, 2, replace=False)
        for _ in range(sessions):
            ts = T0 + int(rng.uniform(0, 60 * DAY))
            viewed = _pick(rng, by_cat[int(rng.choice(prefs))], pop, int(rng.integers(2, 6)))
            for item in viewed:
                ts += 20_000
                s.add("clicks", user, ts, item_id=f"it{item}")
            s.order(user, ts + 60_000, [int(viewed[0])], price)
    return catalog, s.done()


def ties(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    """``synthetic_shops`` fashion with every event of a session at its first timestamp,
    rounded to the hour (exports from systems that keep dates, not times)."""
    from tests.unit.synthetic_shops import make_shop

    catalog, events = make_shop("pharmacy", seed=seed)
    for event in events:
        event["ts"] = event["ts"] // 3_600_000 * 3_600_000
    events.sort(key=lambda e: e["ts"])  # stable: order inside an hour kept
    return catalog, events


def _bundled(kind: str) -> Callable[[int], tuple[list[Msg], list[Msg]]]:
    """A ``synthetic_shops`` kind, so one command exports every synthetic shop."""

    def make_it(seed: int = 1) -> tuple[list[Msg], list[Msg]]:
        from tests.unit.synthetic_shops import make_shop

        return make_shop(kind, seed=seed)

    return make_it


KINDS: dict[str, Callable[[int], tuple[list[Msg], list[Msg]]]] = {
    "fashion": _bundled("fashion"),
    "pharmacy": _bundled("pharmacy"),
    "electronics": electronics,
    "staples": staples,
    "staples_bare": staples_bare,
    "trendy": trendy,
    "cold": cold,
    "marketplace": marketplace,
    "bare": bare,
    "browse": browse,
    "heavy": heavy,
    "ties": ties,
}


def make(kind: str, seed: int = 1) -> tuple[list[Msg], list[Msg]]:
    """(catalog messages, time-ordered events) of one shop kind."""
    return KINDS[kind](seed)


if __name__ == "__main__":
    from pathlib import Path

    from stream.datasets.generic import write_dataset

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/shops")
    for name in sys.argv[2:] or list(KINDS):
        cat_msgs, evs = make(name)
        meta = {"source": f"more_shops {name}"}
        print(name, write_dataset(root / name, cat_msgs, evs, meta=meta))
