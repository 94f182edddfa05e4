"""`recstream profile push | list | compare`: ranking profiles as configuration.

``push`` checks a body with the same code the workers use before it publishes it (an invalid
body would only be rejected by every worker), refuses a version that is not above the one
already published under that name (workers would ignore it as stale) unless ``--force``, and a
shadow named like a built-in or a published live profile (workers reject those: see
``stream.domain.profile_registry``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from stream.domain.profile_registry import ProfileRegistry
from stream.domain.ranking import BUILTIN_PROFILES, RankingProfile, load_ranking_profile
from stream.settings import Settings

TOPIC = "ranking-profiles"


def register(sub: Any) -> None:
    """Add the `profile` command and its subcommands to the main parser's subparsers."""
    p = sub.add_parser("profile", help="push / list / compare ranking profiles (hot swap)")
    psub = p.add_subparsers(dest="profile_command", required=True)
    push = psub.add_parser("push", help="publish a profile body (JSON file) to ranking-profiles")
    push.add_argument("file", type=Path)
    push.add_argument("--force", action="store_true", help="publish even if the version is not new")
    push.set_defaults(func=cmd_push)
    lst = psub.add_parser("list", help="latest published body per profile name")
    lst.set_defaults(func=cmd_list)
    cmp = psub.add_parser("compare", help="live vs shadow profile, from the workers' /metrics")
    cmp.add_argument(
        "--metrics",
        action="append",
        default=None,
        help="a worker's /metrics URL (repeat for each worker; default: "
        "http://127.0.0.1:$RECSTREAM_METRICS_PORT/metrics)",
    )
    cmp.set_defaults(func=cmd_compare)


def load_body(path: Path) -> dict[str, Any]:
    """A profile file checked as the workers will check it; ValueError with the reason."""
    from stream.adapters.profile_body import decode_record, parse_profile
    from stream.domain.profile_registry import build_live

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    _, body = decode_record(None, raw)
    assert body is not None
    build_live(body, parse_profile)
    return body


async def published(settings: Settings) -> dict[str, dict[str, Any] | None]:
    """Latest record per name on the topic (None = tombstone; undecodable ones skipped)."""
    from stream.tools import read_latest

    out: dict[str, dict[str, Any] | None] = {}
    for name, value in (await read_latest(settings, TOPIC)).items():
        try:
            out[name] = None if value is None else orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
    return out


async def live_ranking(settings: Settings, user_id: str) -> tuple[RankingProfile, str]:
    """The profile and variant the workers rank ``user_id`` with now: the configured profile
    replaced by the latest valid body of its name on the topic (for tools that rank outside a
    worker, e.g. ``recs --explain``)."""
    from stream.adapters.profile_body import parse_profile

    registry = ProfileRegistry.starting_with(
        load_ranking_profile(settings.ranking_profile), parse_profile
    )
    body = (await published(settings)).get(registry.active_name)
    if body is not None:
        registry.offer(registry.active_name, body)
    return registry.live.choose(user_id)


async def push(settings: Settings, body: dict[str, Any], force: bool = False) -> str:
    """Publish ``body`` keyed by its name; returns the one-line confirmation."""
    from stream.tools import produce

    name, version = str(body["name"]), int(body["version"])
    shadow = body.get("shadow") is True
    if shadow and name in BUILTIN_PROFILES:
        raise ValueError(f"a shadow needs a name of its own, not the built-in {name!r}")
    previous = (await published(settings)).get(name)
    if shadow and isinstance(previous, dict) and previous.get("shadow") is not True:
        raise ValueError(
            f"{name!r} is a live profile: a shadow needs a name of its own (the topic is "
            "compacted by name, so it would replace the live body for later workers)"
        )
    last = previous.get("version") if isinstance(previous, dict) else None
    if not force and isinstance(last, int) and version <= last:
        raise ValueError(
            f"{name}@{version} is not above the published {name}@{last}: "
            "workers would ignore it (bump the version, or --force)"
        )
    await produce(settings, [(TOPIC, (name.encode(), orjson.dumps(body)))], raw=True)
    kind = "shadow " if shadow else ""
    return f"pushed {kind}{name}@{version} to {settings.topic(TOPIC)}"


def cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = load_body(args.file)
    except ValueError as exc:
        print(f"recstream profile push: rejected {args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        print(asyncio.run(push(settings, body, args.force)))
    except ValueError as exc:
        print(f"recstream profile push: refused {args.file}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    latest = asyncio.run(published(settings))
    if not latest:
        print(f"no profiles published on {settings.topic(TOPIC)}")
    for name, body in sorted(latest.items()):
        if body is None:
            print(f"{name:<24} (retracted)")
            continue
        shares = [f"{v.get('name')}={v.get('share')}" for v in body.get("variants") or []]
        variants = ", ".join(shares)
        flags = " shadow" if body.get("shadow") is True else ""
        extra = f" variants {variants}" if variants else ""
        print(f"{name}@{body.get('version')}{flags}{extra}")
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from stream.profile_compare import fetch_samples, render

    urls = args.metrics
    if not urls:
        if not settings.metrics_port:
            print(
                "recstream profile compare: give --metrics URL (or set RECSTREAM_METRICS_PORT)",
                file=sys.stderr,
            )
            return 2
        urls = [f"http://127.0.0.1:{settings.metrics_port}/metrics"]
    try:
        samples = fetch_samples(urls)
    except OSError as exc:
        print(f"recstream profile compare: cannot read metrics: {exc}", file=sys.stderr)
        return 1
    print(render(samples))
    return 0
