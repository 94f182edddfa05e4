"""Human-readable reasons for a ranked item: what support staff and users read."""

from __future__ import annotations

from collections.abc import Container
from typing import Protocol

from stream.domain.catalog import Catalog
from stream.domain.profile import UserProfile


class Sources(Container[int], Protocol):
    """Target item -> (contribution, query item, role, ts) of its strongest query."""

    def __getitem__(self, idx: int) -> tuple[float, int, str, float]: ...


def _ago(ms: float) -> str:
    minutes = ms / 60_000
    if minutes < 1:
        return "just now"
    if minutes < 90:
        return f"{int(minutes)} min ago"
    if minutes < 48 * 60:
        return f"{int(minutes / 60)} h ago"
    return f"{int(minutes / 1440)} days ago"


def reasons_for(
    idx: int,
    terms: tuple[float, float, float, float, float],
    liked: dict[int, float],
    catalog: Catalog,
    profile: UserProfile,
    rel_source: Sources,
    now_ms: float,
    feed: str,
) -> list[str]:
    """Why this item is here, strongest signal first (what support staff and users read)."""
    aff, rel, pop, rep, view = terms
    reasons: list[tuple[float, str]] = []
    if view > 0:
        reasons.append((view, "you looked at this recently"))
    if rep > 0:
        n, when = profile.purchases.get(catalog.ids[idx], (1.0, now_ms))
        often = "regularly" if n >= 1.5 else "before"
        reasons.append((rep, f"you bought this {often} (last {_ago(now_ms - when)})"))
    if rel > 0 and idx in rel_source:
        _, q, role, ts = rel_source[idx]
        verb = "bought" if role == "buy" else "viewed"
        reasons.append((rel, f"related to '{catalog.titles[q]}' you {verb} {_ago(now_ms - ts)}"))
    if aff > 0:
        fids = sorted(
            (f for f in catalog.feature_ids[idx].tolist() if f in liked), key=lambda f: -liked[f]
        )
        names = ", ".join(catalog.vocab_names[f] for f in fids[:3])
        reasons.append((aff, f"matches your interest in {names}"))
    elif aff < 0:
        reasons.append((0.0, "partly matches features you turned away from"))
    if pop > 0:
        reasons.append((pop, "popular with shoppers right now"))
    if feed == "deals_for_you":
        reasons.append((0.0, "on deal"))
    elif feed == "new_for_you":
        reasons.append((0.0, "new in the catalog"))
    if not reasons:
        reasons.append((0.0, "in stock and not yet seen by you"))
    reasons.sort(key=lambda r: -r[0])
    return [text for _, text in reasons]
