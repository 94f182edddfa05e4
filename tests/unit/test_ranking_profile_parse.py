"""Parsing ranking profile bodies: schema first, then the domain value; clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.adapters.ranking_profiles import InvalidRankingProfile, parse_ranking_profile
from stream.adapters.validation import get_validators, load_schema
from stream.domain.ranking import (
    BUILTIN_PROFILES,
    Boost,
    FeedRules,
    RankingProfile,
    load_ranking_profile,
)

FULL: dict[str, Any] = {
    "name": "summer",
    "version": 4,
    "weights": {"affinity": 0.5, "relation": 1.5, "repeat": 6, "view_return": 0.5},
    "filters": {"returned": False, "purchased": None, "exclude_categories": ["Tobacco"]},
    "boosts": [
        {"feature": "deal", "factor": 1.2},
        {"feature": "brand:Acme", "factor": 2, "when": {"device": "Mobile"}},
    ],
    "buries": [{"feature": "brand:acme", "factor": 0}],
    "pins": ["i-9", "i-3", "i-9"],
    "diversity": {"max_per_category": 2, "max_per_brand": 3, "mmr_lambda": 0.7},
    "size": 12,
    "feeds": {"deals_for_you": {"boosts": [], "filters": {"exclude_categories": []}}},
}


def test_full_body_maps_onto_fields() -> None:
    rp = parse_ranking_profile(FULL)
    assert rp.label == "summer@4"
    assert (rp.w_affinity, rp.w_relation, rp.w_repeat, rp.w_view_return) == (0.5, 1.5, 6.0, 0.5)
    assert rp.filter_returned is False and rp.filter_purchased is None
    assert (rp.max_per_category, rp.max_per_brand, rp.mmr_lambda, rp.size) == (2, 3, 0.7, 12)
    assert rp.rules == FeedRules(
        boosts=(Boost("deal", 1.2), Boost("brand:acme", 2.0, (("device", "mobile"),))),
        buries=(Boost("brand:acme", 0.0),),
        pins=("i-9", "i-3"),  # duplicates dropped, order kept
        exclude_categories=("category:tobacco",),
    )
    deals = rp.rules_for("deals_for_you")
    assert deals.boosts == () and deals.exclude_categories == ()
    assert deals.buries == rp.rules.buries and deals.pins == rp.rules.pins  # inherited
    assert rp.rules_for("new_for_you") == rp.rules


def test_to_dict_round_trips_and_validates() -> None:
    for rp in (parse_ranking_profile(FULL), *BUILTIN_PROFILES.values()):
        body = rp.to_dict()
        get_validators().validate("ranking-profiles", body)
        assert parse_ranking_profile(orjson.loads(orjson.dumps(body))) == rp


def test_todays_bodies_still_parse() -> None:
    """The schema's own example and the minimal body were valid before the extension."""
    example = load_schema("ranking-profiles")["examples"][0]
    assert parse_ranking_profile(example).label == "default@3"
    assert parse_ranking_profile({"name": "minimal", "version": 1}) == RankingProfile(
        name="minimal", version=1
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 1}, "name"),
        ({"name": "x", "version": 0}, "version"),
        ({"name": "x", "version": 1, "boosts": [{"feature": "deal"}]}, "boosts[0].factor"),
        ({"name": "x", "version": 1, "buries": [{"feature": "a:b", "factor": -1}]}, "factor"),
        ({"name": "x", "version": 1, "boosts": [{"feature": "", "factor": 1}]}, "feature"),
        (
            {
                "name": "x",
                "version": 1,
                "boosts": [{"feature": "a", "factor": 1, "when": {"os": "x"}}],
            },
            "os",
        ),
        ({"name": "x", "version": 1, "pins": ["a", 3]}, "pins[1]"),
        ({"name": "x", "version": 1, "diversity": {"mmr_lambda": 1.5}}, "mmr_lambda"),
        ({"name": "x", "version": 1, "diversity": {"max_per_brand": 0}}, "max_per_brand"),
        ({"name": "x", "version": 1, "filters": {"exclude_categories": "Tobacco"}}, "exclude"),
        ({"name": "x", "version": 1, "feeds": {"for_me": {}}}, "feeds"),
        ({"name": "x", "version": 1, "size": 0}, "size"),
        ({"name": "x", "version": 1, "seen_placement": "first"}, "seen_placement"),
        ({"name": "x", "version": 1, "weights": {"repeat": "lots"}}, "weights.repeat"),
    ],
)
def test_invalid_body_is_a_clear_value_error(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match="invalid ranking profile") as err:
        parse_ranking_profile(body)
    assert isinstance(err.value, InvalidRankingProfile)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_non_object_body_is_rejected() -> None:
    with pytest.raises(InvalidRankingProfile, match="message must be object"):
        parse_ranking_profile([])  # type: ignore[arg-type]


def test_from_dict_refuses_a_boost_it_cannot_read() -> None:
    """``from_dict`` trusts the schema but never silently drops a rule."""
    with pytest.raises(ValueError, match="'feature' and 'factor'"):
        RankingProfile.from_dict({"name": "x", "version": 1, "boosts": [{"weight": 1}]})


def test_load_ranking_profile_validates_files(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(orjson.dumps({"buries": [{"feature": "brand:acme", "factor": 0}]}))
    rp = load_ranking_profile(str(good))
    assert rp.label == "default@1" and rp.rules.buries == (Boost("brand:acme", 0.0),)
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps({"name": "b", "version": 2, "pins": "i-1"}))
    with pytest.raises(ValueError, match=r"invalid ranking profile b@2: .*'pins'"):
        load_ranking_profile(str(bad))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        load_ranking_profile(str(broken))
