"""Explanations in plain words and the full score breakdown behind `recs --explain`."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import stream.explain as explain_module
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.profile import UserProfile
from stream.domain.ranking import RankingProfile, explain_feed, rank
from stream.domain.reasons import readable
from stream.domain.relations import CoOccurrence
from stream.explain import format_explanation, live_explanation
from stream.settings import Settings

NOW = 1_700_000_000_000
MIN = 60_000
RAW_KEY = re.compile(r"\b[a-z_]+:[\w-]+")


def grocery() -> list[dict[str, Any]]:
    """Items whose only attributes are codes (``manufacturer:69``), as in Complete Journey."""
    out = []
    for i in range(12):
        out.append(
            {
                "item_id": f"g{i}",
                "title": f"Yoghurt {i}",
                "ts": NOW - i * MIN,
                "attributes": {
                    "manufacturer": 69 + i % 2,
                    "department": "Dairy" if i % 3 else "Bakery",
                    "brand": "National",
                    "price": 2.5 + i,
                },
                "flags": {"deal": i % 4 == 0},
            }
        )
    return out


def shop() -> Catalog:
    catalog = Catalog()
    for message in grocery():
        idx = catalog.upsert(message)
        catalog.record_interaction([idx], float(idx + 1))
    return catalog


@pytest.mark.parametrize(
    ("feature", "text"),
    [
        ("brand:acme", "brand Acme"),
        ("category:trousers", "Trousers"),
        ("colour:navy", "Navy"),
        ("manufacturer:69", None),
        ("price_band:5", None),
        ("deal", "deal"),
        ("size:m", "size M"),
    ],
)
def test_readable_feature_names(feature: str, text: str | None) -> None:
    assert readable(feature) == text


def test_reasons_never_show_raw_feature_keys() -> None:
    catalog = shop()
    profile = UserProfile(
        "u",
        session={"manufacturer:69": [4.0, float(NOW)], "department:dairy": [2.0, float(NOW)]},
        queries=[["g3", "view", NOW - 5 * MIN]],
        query="yoghurt",
        query_ts=NOW - MIN,
    )
    rp = RankingProfile(
        w_price_fit=1.0,
        w_freshness=1.0,
        seen_placement="mixed",
        max_per_category=100,
    )
    items = rank(profile, catalog, CoOccurrence(), rp, NOW)
    texts = [r for item in items for r in item.reasons]
    assert texts and not [t for t in texts if RAW_KEY.search(t)]
    assert any("matches your search 'yoghurt'" in t for t in texts)
    assert any("your interest in Dairy" in t for t in texts)  # the readable feature only


def test_a_code_only_interest_is_explained_through_an_item_the_user_viewed() -> None:
    catalog = shop()
    profile = UserProfile(
        "u", session={"manufacturer:69": [4.0, float(NOW)]}, queries=[["g0", "view", NOW - MIN]]
    )
    rp = RankingProfile(w_popularity=0.0, max_per_category=100, seen_tail=0)
    top = rank(profile, catalog, CoOccurrence(), rp, NOW)[0]
    assert top.reasons[0] == "similar to 'Yoghurt 0' you viewed 1 min ago"


def test_pins_and_boosts_have_their_own_reasons() -> None:
    rp = RankingProfile.from_dict(
        {"name": "r", "version": 1, "pins": ["g1"], "boosts": [{"feature": "deal", "factor": 2}]}
    )
    items = rank(UserProfile("u"), shop(), CoOccurrence(), rp, NOW)
    assert items[0].item_id == "g1" and items[0].reasons[0] == "featured by the shop"
    deal = next(i for i in items if i.item_id == "g8")
    assert "on deal" in deal.reasons
    assert not any("on deal" in r for i in items if i.item_id == "g7" for r in i.reasons)


def test_breakdown_adds_up_and_matches_rank() -> None:
    catalog = shop()
    profile = UserProfile("u", session={"department:dairy": [2.0, float(NOW)]})
    rp = RankingProfile.from_dict(
        {"name": "r", "version": 1, "boosts": [{"feature": "deal", "factor": 3}]}
    )
    explained = explain_feed(profile, catalog, CoOccurrence(), rp, NOW)
    ranked = rank(profile, catalog, CoOccurrence(), rp, NOW)
    assert [e["item_id"] for e in explained] == [r.item_id for r in ranked]
    assert [e["reasons"] for e in explained] == [r.reasons for r in ranked]
    for e in explained:
        parts = e["signals"].values()
        assert sum(s["contribution"] for s in parts) == pytest.approx(e["base"], abs=1e-5)
        for s in parts:
            assert s["contribution"] == pytest.approx(s["value"] * s["weight"], abs=1e-5)
        assert e["score"] == pytest.approx(e["base"] * e["factor"], abs=1e-5)
        assert e["factor"] == (3.0 if catalog.deal[catalog.index[e["item_id"]]] else 1.0)
    assert explain_feed(profile, Catalog(), CoOccurrence(), rp, NOW) == []


def test_live_explanation_uses_the_stored_profile_and_replayed_catalog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The glue of `recs --explain` without a broker: what `state dump` returns and what the
    catalog replica would fill in are stood in for; the ranking is the real one."""
    stored = UserProfile("u1", session={"department:dairy": [2.0, float(NOW)]}, last_ts=NOW)

    async def dump(settings: Settings) -> dict[str, dict[str, Any]]:
        return {"u1": stored.to_dict()}

    async def replay(settings: Settings, engine: Engine, timeout: float = 60.0) -> None:
        for message in grocery():
            engine.catalog.upsert(message)

    monkeypatch.setattr(explain_module, "dump_profiles", dump)
    monkeypatch.setattr(explain_module, "replay_read_models", replay)
    exp = asyncio.run(live_explanation(Settings(), "u1", "for_you", RankingProfile(size=5)))
    assert exp is not None
    assert (exp.user_id, exp.profile, exp.now_ms, exp.catalog_items) == ("u1", "default@1", NOW, 12)
    assert len(exp.items) == 5
    text = format_explanation(exp)
    assert "affinity_session" in text and "- matches your interest in Dairy" in text
    assert text.count("x factor") == 5
    assert asyncio.run(live_explanation(Settings(), "nobody", "for_you")) is None
