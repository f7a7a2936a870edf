"""``botkit export``, ``botkit db forget`` and ``botkit db prune``: their arguments.

Only the parsers live here, because :mod:`botkit.cli` builds them at every start and must stay
light; the commands themselves (and SQLAlchemy with them) are :mod:`botkit.rights_commands`,
imported when one of them runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botkit.store import ConversationStore


def add_export_parser(sub: Any) -> None:
    """``botkit export``'s arguments (``sub``: the top-level subparsers)."""
    export = sub.add_parser("export", help="one thread's (or one user's) stored history as JSON or Markdown")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--thread",
        help="platform:workspace/channel/thread, platform:channel/thread, or a Slack or Discord message link",
    )
    which.add_argument("--user", help="every thread this user id asked in (their questions and the answers)")
    export.add_argument("--platform", help="with --user: only this platform")
    export.add_argument("--format", choices=("json", "markdown"), default="json", help="default: json")
    export.add_argument(
        "--output", help="write to this file (created readable by you alone) instead of stdout"
    )
    _actor(export)


def add_db_parsers(db_sub: Any) -> None:
    """``botkit db forget`` and ``botkit db prune`` (``db_sub``: the ``db`` subparsers)."""
    forget = db_sub.add_parser("forget", help="remove a user's questions and the answers to them")
    forget.add_argument(
        "--user", required=True, help="the user id (Slack U…, Discord snowflake, console name)"
    )
    forget.add_argument("--platform", help="only this platform (default: every platform)")
    forget.add_argument("--yes", action="store_true", help="do not ask (needed when not at a terminal)")
    _actor(forget)
    prune = db_sub.add_parser("prune", help="remove turns older than a duration (a dry run unless --apply)")
    prune.add_argument("--older-than", required=True, help="e.g. 90d, 12h, 2w")
    prune.add_argument("--persona", help="only turns answered by this persona")
    prune.add_argument(
        "--channel", help="only this channel: its id, platform:channel or platform:workspace/channel"
    )
    prune.add_argument("--apply", action="store_true", help="remove them (default: only say what would go)")
    _actor(prune)


def _actor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", help="who runs this, for the audit trail (default: $USER)")


async def run(store: ConversationStore, args: argparse.Namespace) -> int:
    """Run the command ``args`` names on an open store."""
    from botkit import rights_commands

    if args.command == "export":
        return await rights_commands.export(store, args)
    if args.db_command == "forget":
        return await rights_commands.forget(store, args)
    return await rights_commands.prune(store, args)
