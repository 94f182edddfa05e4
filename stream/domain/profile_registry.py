"""Which ranking profile is live, for whom: the pure half of hot swap, A/B variants and shadow.

Workers follow the `ranking-profiles` topic (key = profile name, value = JSON body) and hand
every record to ``ProfileRegistry.offer``; the pipeline asks ``live.choose(user_id)`` per user
burst. Everything here is deterministic and free of I/O, so every worker that reads the same
topic ends on the same registry, and the same user lands in the same variant on every worker
and after every restart.

Rules (README "Changing the ranking"):

- Only bodies named like the worker's configured profile (``RECSTREAM_RANKING_PROFILE``) can
  become live; others are ``ignored`` (they belong to workers configured with another name).
- A body replaces the live one only with a *higher* version. An equal version with an equal body
  is ``unchanged`` (a replay); an equal version with another body, or a lower one, is ``stale``
  and ignored: versions are how operators say which body wins, and a replaying worker must end
  on the same body as one that saw the pushes live, whatever order duplicates arrive in.
- ``"shadow": true`` bodies are scored next to the live one without affecting users; one shadow
  at a time, the latest accepted; a tombstone (null value) for its name retracts it. A shadow
  needs a name of its own (``rejected`` otherwise): the topic is keyed (and compacted) by name,
  so a shadow sharing the live profile's key would, once compacted, erase the live body for
  every worker that starts later. Publishing the shadow's content under the live name (with a
  higher version) promotes it, and the shadow, then identical to the live ranking, is dropped.
- An invalid body (``parse`` raises ValueError) is ``rejected``; the live one stays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stream.domain.ranking import RankingProfile

#: Body (already JSON-decoded) -> profile; raises ValueError with a one-line reason if invalid.
Parse = Callable[[Mapping[str, Any]], RankingProfile]

DEFAULT_VARIANT = "A"
#: Body fields that configure the registry, not the ranking (never merged into a variant).
CONTROL_FIELDS = ("variants", "shadow")
_SHARE_TOLERANCE = 1e-6


def bucket(profile_name: str, user_id: str) -> float:
    """A user's stable position in [0, 1) for one profile: blake2b of ``name:user_id``.

    Salted with the profile name so two experiments on different profiles split users
    independently; not salted with the version, so a user keeps their variant when the
    profile's weights are tuned between versions."""
    digest = hashlib.blake2b(f"{profile_name}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    share: float
    ranking: RankingProfile


@dataclass(frozen=True)
class LiveProfile:
    """One accepted body: its base profile and, if it declares them, its A/B variants."""

    base: RankingProfile
    variants: tuple[Variant, ...] = ()
    body: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        return self.base.label

    def choose(self, user_id: str) -> tuple[RankingProfile, str]:
        """The effective profile and variant name for one user."""
        if not self.variants:
            return self.base, DEFAULT_VARIANT
        point = bucket(self.base.name, user_id)
        edge = 0.0
        for variant in self.variants:
            edge += variant.share
            if point < edge:
                return variant.ranking, variant.name
        last = self.variants[-1]  # shares sum to 1 within rounding: the top edge belongs here
        return last.ranking, last.name

    def info(self) -> list[tuple[str, str, float]]:
        """(name@version, variant, share) of every variant (one "A" at share 1 without any)."""
        if not self.variants:
            return [(self.label, DEFAULT_VARIANT, 1.0)]
        return [(self.label, v.name, v.share) for v in self.variants]


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge for variant overrides: objects merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in overrides.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = merge(current, value)
        else:
            out[key] = value
    return out


def build_live(body: Mapping[str, Any], parse: Parse) -> LiveProfile:
    """Parse a body and its variants; ValueError (one line) if any part is invalid."""
    core = {k: v for k, v in body.items() if k not in CONTROL_FIELDS}
    base = parse(core)
    raw_variants = body.get("variants") or []
    if not raw_variants:
        return LiveProfile(base, (), body)
    variants: list[Variant] = []
    for i, raw in enumerate(raw_variants):
        name = str(raw.get("name", ""))
        if not name or any(v.name == name for v in variants):
            raise ValueError(f"variants[{i}]: name must be non-empty and unique, got {name!r}")
        share = float(raw.get("share", 0.0))
        if not 0.0 < share <= 1.0:
            raise ValueError(f"variants[{i}] ({name}): share must be in (0, 1], got {share}")
        overrides = {k: v for k, v in raw.items() if k not in ("name", "share")}
        fixed = [k for k in ("version", *CONTROL_FIELDS) if k in overrides]
        if fixed or overrides.get("name", body.get("name")) != body.get("name"):
            raise ValueError(f"variants[{i}] ({name}): may not override {fixed or ['name']}")
        try:
            ranking = parse(merge(core, overrides))
        except ValueError as exc:
            raise ValueError(f"variants[{i}] ({name}): {exc}") from None
        variants.append(Variant(name, share, ranking))
    total = sum(v.share for v in variants)
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        raise ValueError(f"variant shares must sum to 1, got {total:g}")
    return LiveProfile(base, tuple(variants), body)


@dataclass(frozen=True, slots=True)
class Update:
    """What one `ranking-profiles` record did; ``detail`` is the one-line log text."""

    outcome: str  # activated | shadowed | retracted | unchanged | stale | ignored | rejected
    label: str
    detail: str

    @property
    def changed(self) -> bool:
        return self.outcome in ("activated", "shadowed", "retracted")


@dataclass
class ProfileRegistry:
    """The live profile (with variants) and the shadow, folded from the topic in order."""

    active_name: str
    live: LiveProfile
    parse: Parse
    shadow: LiveProfile | None = None
    _shadow_versions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def starting_with(cls, initial: RankingProfile, parse: Parse) -> ProfileRegistry:
        """A worker's registry before it reads the topic: its configured (built-in) profile."""
        return cls(initial.name, LiveProfile(initial), parse)

    def offer(self, key: str | None, body: Mapping[str, Any] | None) -> Update:
        """Apply one record (``body`` None = tombstone). Never raises for bad data."""
        if body is None:
            return self._retract(key or "")
        label = f"{body.get('name')}@{body.get('version')}"
        try:
            if key is not None and key != body.get("name"):
                raise ValueError(f"key {key!r} differs from name {body.get('name')!r}")
            candidate = build_live(body, self.parse)
        except (ValueError, TypeError, AttributeError) as exc:
            text = str(exc)
            detail = text if label in text else f"invalid ranking profile {label}: {text}"
            return Update("rejected", label, detail)
        if body.get("shadow") is True:
            return self._offer_shadow(candidate)
        return self._offer_live(candidate)

    def _offer_live(self, candidate: LiveProfile) -> Update:
        label, current = candidate.label, self.live
        if candidate.base.name != self.active_name:
            return Update("ignored", label, f"{label}: this worker runs {self.active_name!r}")
        if candidate.base.version < current.base.version or (
            candidate.base.version == current.base.version and candidate.body != current.body
        ):
            if candidate.base.version == current.base.version and current.body is None:
                why = "the built-in profile already has this version"
            else:
                why = "a version must be higher than the live one to replace it"
            return Update("stale", label, f"ignored {label}: {why} ({current.label})")
        if candidate.base.version == current.base.version:
            return Update("unchanged", label, f"{label} is already live")
        self.live = candidate
        if self.shadow is not None and _content(self.shadow.body) == _content(candidate.body):
            self.shadow = None  # promoted: comparing a profile with itself tells nothing
        return Update("activated", label, f"live profile is now {label} (was {current.label})")

    def _offer_shadow(self, candidate: LiveProfile) -> Update:
        label, name = candidate.label, candidate.base.name
        if name == self.active_name:
            why = "a shadow needs a name of its own (it would share the live profile's key)"
            return Update("rejected", label, f"invalid ranking profile {label}: {why}")
        seen = self._shadow_versions.get(name, 0)
        if candidate.base.version <= seen:
            same = self.shadow is not None and self.shadow.body == candidate.body
            outcome = "unchanged" if same else "stale"
            return Update(outcome, label, f"shadow {label}: version not above {name}@{seen}")
        self._shadow_versions[name] = candidate.base.version
        self.shadow = candidate
        return Update("shadowed", label, f"shadow profile is now {label}")

    def _retract(self, name: str) -> Update:
        if self.shadow is not None and self.shadow.base.name == name:
            label = self.shadow.label
            self.shadow = None
            return Update("retracted", label, f"shadow {label} retracted")
        return Update("ignored", name, f"tombstone for {name!r}: no shadow of that name")


def _content(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a body ranks with, whatever it is called (to recognise a promoted shadow)."""
    if body is None:
        return None
    return {k: v for k, v in body.items() if k not in ("name", "version", "shadow")}
