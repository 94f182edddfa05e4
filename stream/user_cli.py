"""`recstream recs | forget | state dump`: one user's data in a running deployment.

What is recommended to a user (and why), what is stored about them, and erasing it all: the
commands an operator or a support request needs about a user, read from or sent to the live
topics (``stream.tools``). A group with one subject, registered from ``stream.cli`` like
``model_cli`` and ``profile_cli``, so the main module stays small.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from stream.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add `recs`, `forget` and `state` to the main parser's subparsers (in that order: the
    order of ``recstream --help``)."""
    p = sub.add_parser("recs", help="show a user's latest recommendations")
    p.add_argument("user")
    p.add_argument("--feed", default="for_you")
    p.add_argument(
        "--explain",
        action="store_true",
        help="print the reasons per item and the full score breakdown, ranked from the live state",
    )
    p.add_argument("--profile", default=None, help="with --explain: rank with this profile")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=cmd_recs)

    p = sub.add_parser("forget", help="erase a user everywhere (state, Qdrant, recommendations)")
    p.add_argument("user")
    p.add_argument("--reason", default="", help="kept on the forget topic for the audit trail")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("state", help="inspect stored state (read from the changelog)")
    state_sub = p.add_subparsers(dest="state_command", required=True)
    d = state_sub.add_parser("dump", help="print stored profiles as JSON")
    d.add_argument("user", nargs="?", default=None, help="one user (default: all)")
    d.set_defaults(func=cmd_state)


def cmd_recs(args: argparse.Namespace, settings: Settings) -> int:
    from stream.tools import latest_recommendations

    found = asyncio.run(latest_recommendations(settings, args.user, args.feed, args.timeout))
    if found is None and not args.explain:
        print(
            f"no recommendations for {args.user!r} (feed {args.feed}) on "
            f"{settings.topic('recommendations')}",
            file=sys.stderr,
        )
        return 1
    if found is None:  # --explain: the live state may still have a profile to explain
        return _explain(args, settings)
    print(
        f"{found['user_id']}  feed={found['feed']}  profile={found['profile']}  "
        f"trigger={found['trigger']['topic']}:{found['trigger']['event_id']}"
    )
    for rank, item in enumerate(found["items"], 1):
        print(f"{rank:3d}. {item['item_id']:<24} {item['score']:8.3f}")
        if args.explain:
            for reason in item["reasons"]:
                print(f"       - {reason}")
    return _explain(args, settings) if args.explain else 0


def _explain(args: argparse.Namespace, settings: Settings) -> int:
    from stream.explain import print_live_explanation

    return print_live_explanation(settings, args.user, args.feed, args.profile)


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    from stream.tools import forget_user

    event_id = asyncio.run(forget_user(settings, args.user, args.reason))
    print(f"erasure of {args.user!r} requested ({event_id} on {settings.topic('forget')})")
    return 0


def cmd_state(args: argparse.Namespace, settings: Settings) -> int:
    import orjson

    from stream.tools import dump_profiles

    profiles = asyncio.run(dump_profiles(settings))
    if args.user is not None:
        if args.user not in profiles:
            print(f"no stored profile for {args.user!r}", file=sys.stderr)
            return 1
        profiles = {args.user: profiles[args.user]}
    sys.stdout.write(orjson.dumps(profiles, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
