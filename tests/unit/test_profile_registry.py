"""ProfileRegistry: which body becomes live (versions, names, shadows), variants, stable split."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from stream.adapters.profile_body import decode_record, dry_run, parse_profile
from stream.adapters.validation import SchemaError
from stream.domain.profile_registry import ProfileRegistry, bucket, build_live, merge
from stream.domain.ranking import BUILTIN_PROFILES, RankingProfile


def registry(name: str = "default") -> ProfileRegistry:
    return ProfileRegistry.starting_with(BUILTIN_PROFILES[name], parse_profile)


def body(version: int, name: str = "default", **fields: Any) -> dict[str, Any]:
    return {"name": name, "version": version, **fields}


AB = [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.5, "weights": {"popularity": 3.0}}]


def test_higher_version_replaces_the_builtin_and_weights_apply() -> None:
    reg = registry()
    update = reg.offer("default", body(2, weights={"popularity": 5.0}))
    assert update.outcome == "activated" and update.changed
    assert reg.live.label == "default@2" and reg.live.base.w_popularity == 5.0
    assert reg.live.choose("anyone") == (reg.live.base, "A")


def test_equal_or_lower_versions_are_stale_and_the_live_one_stays() -> None:
    reg = registry()
    assert reg.offer("default", body(1, weights={"popularity": 5.0})).outcome == "stale"
    assert reg.offer("default", body(3)).outcome == "activated"
    assert reg.offer("default", body(3)).outcome == "unchanged"  # a replay of the same body
    assert reg.offer("default", body(3, size=5)).outcome == "stale"  # same version, other body
    assert reg.offer("default", body(2)).outcome == "stale"
    assert reg.live.label == "default@3" and reg.live.base.size == RankingProfile().size


def test_other_names_are_ignored_by_a_worker_configured_for_default() -> None:
    reg = registry()
    assert reg.offer("grocery", body(9, name="grocery")).outcome == "ignored"
    assert reg.live.label == "default@1"
    films = registry("films")
    assert films.offer("films", body(2, name="films")).outcome == "activated"


@pytest.mark.parametrize(
    ("key", "bad", "words"),
    [
        ("default", body(2, weights={"popularity": "high"}), "weights.popularity"),
        ("default", body(2, query_items="many"), "field 'query_items' must be an integer"),
        ("default", body(2, query_tau_ms=[1]), "query_tau_ms"),
        ("other", body(2), "differs from name"),
        ("default", body(2, variants=[{"name": "A", "share": 0.7}]), "sum to 1"),
        ("default", body(2, variants=[{"name": "A", "share": 0.5}] * 2), "unique"),
        ("default", body(2, variants=[{"name": "A", "share": 1.0, "version": 9}]), "override"),
        ("default", body(2, variants=[{"name": "A", "share": 1.0, "size": "x"}]), "variants[0]"),
    ],
)
def test_invalid_bodies_are_rejected_with_the_reason(
    key: str, bad: dict[str, Any], words: str
) -> None:
    reg = registry()
    update = reg.offer(key, bad)
    assert update.outcome == "rejected" and words in update.detail, update.detail
    assert reg.live.label == "default@1"


def test_variants_split_users_by_share_stably_and_apply_their_overrides() -> None:
    reg = registry()
    assert reg.offer("default", body(2, variants=AB)).outcome == "activated"
    users = [f"user-{i}" for i in range(1000)]
    picks = {u: reg.live.choose(u) for u in users}
    counts = Counter(variant for _, variant in picks.values())
    assert 450 <= counts["A"] <= 550 and counts["A"] + counts["B"] == 1000
    for ranking, variant in picks.values():
        assert ranking.label == "default@2"
        assert ranking.w_popularity == (3.0 if variant == "B" else RankingProfile().w_popularity)
    again = registry()  # another worker, or this one after a restart
    again.offer("default", body(2, variants=AB))
    assert all(again.live.choose(u)[1] == picks[u][1] for u in users)
    # a new version keeps each user in their variant (the hash is salted by name, not version)
    again.offer("default", body(3, variants=AB, weights={"relation": 1.0}))
    assert all(again.live.choose(u)[1] == picks[u][1] for u in users)


def test_bucket_is_uniform_enough_and_salted_by_profile_name() -> None:
    points = [bucket("default", f"u{i}") for i in range(2000)]
    assert all(0.0 <= p < 1.0 for p in points)
    assert 0.45 < sum(p < 0.5 for p in points) / 2000 < 0.55
    other = [bucket("grocery", f"u{i}") for i in range(2000)]
    same_half = sum((a < 0.5) == (b < 0.5) for a, b in zip(points, other, strict=True))
    assert 0.4 < same_half / 2000 < 0.6  # independent splits, not the same one renamed


def test_shadow_is_separate_from_the_live_track_and_can_be_promoted_or_retracted() -> None:
    reg = registry()
    candidate = body(1, name="cand", shadow=True, weights={"popularity": 9.0})
    assert reg.offer("cand", candidate).outcome == "shadowed"
    assert reg.live.label == "default@1" and reg.shadow is not None
    assert reg.shadow.label == "cand@1" and reg.shadow.base.w_popularity == 9.0
    assert reg.offer("cand", candidate).outcome == "unchanged"
    assert reg.offer("cand", body(1, name="cand", shadow=True)).outcome == "stale"
    # promotion: the same content under the live name, with a higher version
    promoted = body(2, weights={"popularity": 9.0})
    assert reg.offer("default", promoted).outcome == "activated"
    assert reg.live.base.w_popularity == 9.0 and reg.shadow is None  # no self-comparison
    assert reg.offer("cand", body(2, name="cand", shadow=True)).outcome == "shadowed"
    assert reg.offer("nope", None).outcome == "ignored"
    assert reg.offer("cand", None).outcome == "retracted" and reg.shadow is None


def test_a_shadow_named_like_the_live_profile_is_rejected() -> None:
    reg = registry()
    update = reg.offer("default", body(2, shadow=True))
    assert update.outcome == "rejected" and "name of its own" in update.detail
    assert reg.shadow is None and reg.live.label == "default@1"


def test_merge_is_deep_for_objects_and_replaces_lists() -> None:
    base = {"weights": {"a": 1, "b": 2}, "buries": [1], "size": 3}
    assert merge(base, {"weights": {"b": 5}, "buries": []}) == {
        "weights": {"a": 1, "b": 5},
        "buries": [],
        "size": 3,
    }
    assert base["weights"] == {"a": 1, "b": 2}  # not mutated


def test_build_live_without_variants_has_one_variant_a() -> None:
    live = build_live(body(4), parse_profile)
    assert live.info() == [("default@4", "A", 1.0)]


def test_records_decode_and_the_schema_checks_variants_and_shadow() -> None:
    assert decode_record(b"default", None) == ("default", None)
    with pytest.raises(ValueError, match="not valid JSON"):
        decode_record(b"default", b"{nope")
    with pytest.raises(ValueError, match="JSON object"):
        decode_record(b"default", b"[1]")
    for bad, field in (
        (body(2, variants=[{"name": "A"}]), "variants[0].share"),
        (body(2, variants=[{"name": "A", "share": 0}]), "variants[0].share"),
        (body(2, variants={"B": {}}), "variants"),
        (body(2, shadow="yes"), "shadow"),
    ):
        with pytest.raises(SchemaError) as err:
            decode_record(b"default", orjson.dumps(bad))
        assert err.value.path == field


def test_dry_run_turns_a_profile_that_cannot_rank_into_a_value_error() -> None:
    dry_run(RankingProfile())  # the built-in ranks
    with pytest.raises(ValueError, match="cannot rank"):
        dry_run(RankingProfile(query_items="many"))  # type: ignore[arg-type]
