"""`recstream recs USER --explain`: the full score breakdown of a user's list, from the live state.

The `recommendations` topic carries each item's reasons, not why its score is what it is. So
this reads what a worker would rank with — the user's stored profile (the changelog, read by
the same code as `recstream state dump`), the catalog, stock and learned read models replayed
from their topics (the same replica a worker starts with) — and ranks it locally with the
pure domain function, at the time of the user's latest event, printing every signal's value,
weight and contribution per item.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stream.adapters.replica import CatalogReplica
from stream.adapters.validation import get_validators
from stream.domain.engine import Engine
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile, explain_feed, load_ranking_profile
from stream.settings import Settings
from stream.tools import dump_profiles


@dataclass
class LiveExplanation:
    user_id: str
    feed: str
    profile: str
    now_ms: int
    catalog_items: int
    items: list[dict[str, Any]]


async def replay_read_models(settings: Settings, engine: Engine, timeout: float = 60.0) -> None:
    """Fill the engine's catalog and learned read models from their topics, to their end."""
    replica = CatalogReplica(settings, engine.catalog, get_validators(), learner=engine.learner)
    try:
        await replica.start(timeout)
        if not await replica.caught_up(timeout):
            raise RuntimeError(f"catalog replay did not catch up within {timeout:.0f} s")
    finally:
        await replica.stop()


async def live_explanation(
    settings: Settings, user_id: str, feed: str, ranking: RankingProfile | None = None
) -> LiveExplanation | None:
    """The user's list re-ranked from the live state with its breakdown; None if no profile."""
    stored = (await dump_profiles(settings)).get(user_id)
    if stored is None:
        return None
    profile = UserProfile.from_dict(stored)
    if ranking is None:  # what the workers rank this user with now: pushed body, variant
        from stream.profile_cli import live_ranking

        ranking, _ = await live_ranking(settings, user_id)
    rp = ranking
    engine = Engine(ranking=rp, feeds=(feed,))
    await replay_read_models(settings, engine)
    now = profile.last_ts
    items = explain_feed(
        profile,
        engine.catalog,
        engine.relations,
        rp,
        float(now),
        feed,
        engine.profile_config,
        learned=engine.repeats,
        trending=engine.trending,
    )
    return LiveExplanation(user_id, feed, rp.label, now, len(engine.catalog), items)


def format_explanation(exp: LiveExplanation) -> str:
    """Plain text: per item its score, boost factor, non-zero signals and reasons."""
    when = datetime.fromtimestamp(exp.now_ms / 1000, tz=UTC).isoformat(timespec="seconds")
    lines = [
        f"score breakdown from the live state: {exp.user_id}  feed={exp.feed}  "
        f"profile={exp.profile}  as of {when}  ({exp.catalog_items:,} catalog items)"
    ]
    if not exp.items:
        lines.append("  (no eligible item)")
    for n, item in enumerate(exp.items, 1):
        marks = "".join(
            f"  [{m}]" for m, on in (("pinned", item["pinned"]), ("seen", item["seen"])) if on
        )
        lines.append(
            f"{n:3d}. {item['item_id']:<24} {item['score']:8.3f} = base {item['base']:.3f} "
            f"x factor {item['factor']:.2f}  '{item['title']}'{marks}"
        )
        for name, s in item["signals"].items():
            if s["value"] or s["contribution"]:
                lines.append(
                    f"       {name:<17} {s['value']:7.3f} x {s['weight']:7.3f} = "
                    f"{s['contribution']:8.3f}"
                )
        for reason in item["reasons"]:
            lines.append(f"       - {reason}")
    return "\n".join(lines)


def print_live_explanation(settings: Settings, user_id: str, feed: str, spec: str | None) -> int:
    """The `recs --explain` tail: 0 when a profile was found and explained, 1 otherwise."""
    ranking = load_ranking_profile(spec) if spec else None
    exp = asyncio.run(live_explanation(settings, user_id, feed, ranking))
    if exp is None:
        print(f"no stored profile for {user_id!r}: nothing to explain", file=sys.stderr)
        return 1
    print(format_explanation(exp))
    return 0
