"""`ranking-profiles` records → validated bodies and profiles, or one-line ValueErrors.

``parse_profile`` is the single door a body goes through before it can rank live traffic:
``parse_ranking_profile`` (the JSON Schema, then ``RankingProfile.from_dict``), then a dry run
of the profile on a tiny synthetic catalog: the schema allows extra properties, and a value of
a wrong type that only ranking touches would otherwise fail on live traffic, in every worker at
once, instead of being rejected here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

import orjson

from stream.adapters.ranking_profiles import parse_ranking_profile
from stream.adapters.validation import get_validators
from stream.domain.catalog import Catalog
from stream.domain.engine import Engine
from stream.domain.events import UserEvent
from stream.domain.ranking import FEEDS, RankingProfile

SCHEMA = "ranking-profiles"
_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def validate_body(body: Mapping[str, Any]) -> None:
    """The JSON Schema check alone (SchemaError is a ValueError naming the field)."""
    get_validators().validate(SCHEMA, dict(body))


def parse_profile(body: Mapping[str, Any]) -> RankingProfile:
    """Schema-valid body → RankingProfile that has ranked once; ValueError otherwise."""
    profile = parse_ranking_profile(body)
    check_field_types(body)
    dry_run(profile)
    return profile


def check_field_types(body: Mapping[str, Any]) -> None:
    """Top-level fields the schema does not type (it allows extra properties) but
    ``from_dict`` copies onto the profile must have their default's type: a clear one-line
    error naming the field, rather than the dry run's exception from deep inside ranking."""
    for f in fields(RankingProfile):
        if f.name not in body or f.default is MISSING or f.default is None:
            continue
        value, default = body[f.name], f.default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and (isinstance(value, int) or not isinstance(default, int))
        else:
            ok = isinstance(value, type(default))
        if not ok:
            kind = _KINDS.get(type(default), type(default).__name__)
            raise ValueError(
                f"invalid ranking profile {body.get('name')}@{body.get('version')}: "
                f"field '{f.name}' must be {kind}, got {value!r}"
            )


def dry_run(profile: RankingProfile) -> None:
    """Rank every feed once for a user with a click and an order on four items."""
    catalog = Catalog(capacity=8)
    for i in range(4):
        catalog.upsert(
            {
                "item_id": f"dry-{i}",
                "title": f"Dry run {i}",
                "attributes": {"category": [f"c{i % 2}"], "brand": f"b{i % 2}", "price": 5 + i},
                "flags": {"deal": i % 2 == 0, "new": i % 3 == 0},
            }
        )
    engine = Engine(catalog=catalog, ranking=profile, feeds=FEEDS)
    events = [
        UserEvent("clicks", "dry-1", "dry-user", 1_000, ("dry-0",), (1,)),
        UserEvent("orders", "dry-2", "dry-user", 2_000, ("dry-1",), (1,)),
    ]
    try:
        engine.step(None, "dry-user", events)
    except Exception as exc:  # what would have crashed the workers: reject the body instead
        raise ValueError(f"{SCHEMA}: the profile cannot rank: {exc!r}") from None


def decode_record(
    key: bytes | None, value: bytes | None
) -> tuple[str | None, dict[str, Any] | None]:
    """(key, body) of a record; body None for a tombstone. ValueError if not a JSON object or
    not schema-valid as a whole (variants and shadow included)."""
    name = None if key is None else key.decode("utf-8", errors="replace")
    if value is None:
        return name, None
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{SCHEMA}: not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError(f"{SCHEMA}: expected a JSON object, got {type(body).__name__}")
    validate_body(body)
    return name, body
