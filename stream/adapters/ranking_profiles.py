"""The one way in for a ranking profile body: schema validation, then the domain value.

Bodies come from outside (the `ranking-profiles` topic, `recstream profile push`, a file named by
``RECSTREAM_RANKING_PROFILE``), so they are checked against ``schemas/ranking-profiles.schema.json``
(compiled once with fastjsonschema, like every topic's messages) before any field is read. Every
failure is a ``ValueError`` whose message names the profile and the offending field, which is
what a merchandiser needs to fix the body and what a worker logs when it keeps the old profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream.adapters.validation import SchemaError, get_validators
from stream.domain.ranking_profile import RankingProfile

SCHEMA = "ranking-profiles"


class InvalidRankingProfile(ValueError):
    """A body that is not a valid ranking profile; ``str()`` is one line naming the field."""


def _label(body: object) -> str:
    if isinstance(body, Mapping):
        return f"{body.get('name', '?')}@{body.get('version', '?')}"
    return "?"


def parse_ranking_profile(body: Mapping[str, Any]) -> RankingProfile:
    """Validate ``body`` against the schema, then build the profile (raises
    ``InvalidRankingProfile``, a ValueError, with a one-line reason)."""
    try:
        get_validators().validate(SCHEMA, body)
    except SchemaError as exc:
        raise InvalidRankingProfile(f"invalid ranking profile {_label(body)}: {exc}") from None
    try:
        return RankingProfile.from_dict(body)
    except (TypeError, ValueError) as exc:
        raise InvalidRankingProfile(f"invalid ranking profile {_label(body)}: {exc}") from None
