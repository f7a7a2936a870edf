"""``botkit export``, ``botkit db forget`` and ``botkit db prune``: data rights from the command line.

Each one that reads or removes someone's data writes an audit row (platform ``botkit``, actor =
who ran it: ``--actor`` or ``$USER``) with counts, never text. ``forget`` asks before it deletes
(on a terminal), and refuses to run unattended without ``--yes``; ``prune`` is a dry run unless
``--apply``. The arguments are :mod:`botkit.rights_cli`; the queries :mod:`botkit.store.rights`;
the export's shape :mod:`botkit.export`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botkit import export as exporting
from botkit.audit import SYSTEM, record
from botkit.durations import parse_duration
from botkit.store.models import utcnow
from botkit.store.rights import DataRights, Removed, Thread, TurnRow, by_persona_and_channel, channel_names

if TYPE_CHECKING:
    from botkit.store import ConversationStore

EXIT_OK, EXIT_CHECK, EXIT_USAGE = 0, 1, 2


def _who(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _error(text: str) -> None:
    print(f"botkit: error: {text}", file=sys.stderr)


# -- export --------------------------------------------------------------------------------------
async def _find_thread(rights: DataRights, text: str) -> Thread | str:
    """The one thread ``text`` names, or the error to print."""
    try:
        refs = exporting.parse_thread(text)
    except exporting.BadThread as err:
        return str(err)
    found: dict[int, Thread] = {}
    for ref in refs:
        for thread in await rights.threads(ref.platform, ref.workspace, ref.channel, ref.thread):
            found[thread.id] = thread
    if not found:
        return (
            f"no stored thread {text!r}; give the key as botkit stores it, platform:workspace/channel/thread "
            "(`botkit export --user ID` shows the threads a user asked in)"
        )
    if len(found) > 1:
        keys = ", ".join(str(t.key) for t in found.values())
        return f"{text!r} names {len(found)} threads ({keys}); give the full key"
    return next(iter(found.values()))


async def export(store: ConversationStore, args: argparse.Namespace) -> int:
    rights = DataRights(store)
    if args.thread is not None and args.platform is not None:
        _error("--platform goes with --user; a --thread names its platform itself")
        return EXIT_USAGE
    if args.thread is not None:
        thread = await _find_thread(rights, args.thread)
        if isinstance(thread, str):
            _error(thread)
            return EXIT_CHECK
        threads = [exporting.thread_object(thread, await store.messages(thread.id))]
        detail: dict[str, Any] = {"thread": str(thread.key)}
    else:
        found = await rights.threads_of(args.user, args.platform)
        if not found:
            _error(
                f"no stored question of user {args.user!r}"
                + (f" on {args.platform}" if args.platform else "")
            )
            return EXIT_CHECK
        threads = [exporting.thread_object(t, await store.messages(t.id), user=args.user) for t in found]
        detail = {"user": args.user, "platform": args.platform, "threads": len(threads)}
    doc = exporting.document(threads, user=args.user)
    text = exporting.as_markdown(doc) if args.format == "markdown" else exporting.as_json(doc)
    turns = sum(len(t["turns"]) for t in threads)
    detail |= {"format": args.format, "turns": turns, "output": args.output}
    await record(store, "export", platform=SYSTEM, actor=_who(args), detail=detail)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    _write_private(Path(args.output), text)
    print(f"exported {turns} turn(s) in {len(threads)} thread(s) to {args.output}")
    return EXIT_OK


def _write_private(path: Path, text: str) -> None:
    """An export holds what people asked: the file is created readable by its owner alone."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


# -- forget ----------------------------------------------------------------------------------------
def _summary(turns: list[TurnRow]) -> str:
    questions = len({t.question_id for t in turns})
    answers = len({t.answer_id for t in turns if t.answer_id is not None})
    reasoning = len({t.answer_id for t in turns if t.has_reasoning})
    threads = len({t.key for t in turns})
    return f"{questions} question(s), {answers} answer(s) ({reasoning} with reasoning) in {threads} thread(s)"


def _removed_text(removed: Removed) -> str:
    return (
        f"removed {removed.questions} question(s) and {removed.answers} answer(s) "
        f"({removed.reasoning} with reasoning)"
    )


def _left_text(removed: Removed) -> str:
    return (
        f"{removed.in_progress} turn(s) still in progress (or left unfinished by a stopped botkit, which "
        "its next start finishes) were not removed; run this again once they are finished"
    )


async def _confirm(question: str) -> bool:
    answer = await asyncio.to_thread(input, f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


async def forget(store: ConversationStore, args: argparse.Namespace) -> int:
    rights = DataRights(store)
    where = f" on {args.platform}" if args.platform else " on every platform"
    turns = await rights.turns(user=args.user, platform=args.platform)
    print(f"user {args.user}{where}: {_summary(turns)}")
    if turns and not args.yes:
        if not sys.stdin.isatty():
            _error("`botkit db forget` deletes data and is not at a terminal to ask; add --yes to confirm")
            return EXIT_USAGE
        if not await _confirm("Remove them for good (the audit trail keeps that it happened)?"):
            print("nothing removed")
            return EXIT_CHECK
    removed = await rights.remove(turns)
    orphans = await rights.remove_orphan_answers(args.user, args.platform)
    removed = Removed(removed.questions, removed.answers + orphans, removed.reasoning, removed.in_progress)
    detail = {"user": args.user, "platform": args.platform, **removed.detail()}
    await record(store, "forget", platform=SYSTEM, actor=_who(args), detail=detail)
    print(f"{_removed_text(removed)} of user {args.user}; the audit trail records that (counts only)")
    if removed.in_progress:
        print(_left_text(removed), file=sys.stderr)
        return EXIT_CHECK
    return EXIT_OK


# -- prune -----------------------------------------------------------------------------------------
async def prune(store: ConversationStore, args: argparse.Namespace) -> int:
    try:
        age = parse_duration(args.older_than)
    except ValueError as err:
        _error(f"--older-than: {err}")
        return EXIT_USAGE
    cutoff = utcnow() - age
    rights = DataRights(store)
    turns = await rights.turns(asked_before=cutoff, persona=args.persona)
    if args.channel:
        turns = [t for t in turns if args.channel in channel_names(t.key)]
    scope = "".join(
        f" {label} {value}"
        for label, value in (("persona", args.persona), ("channel", args.channel))
        if value
    )
    head = f"turns older than {args.older_than} (asked before {cutoff:%Y-%m-%d %H:%M:%S} UTC){scope}"
    rows = by_persona_and_channel(t for t in turns if not t.in_progress)
    print(f"{head}: {_summary([t for t in turns if not t.in_progress])}")
    for persona, channel, count in rows:
        print(f"  persona {persona:<12} channel {channel:<32} {count} turn(s)")
    if not args.apply:
        print("dry run: nothing removed; add --apply to remove them" if rows else "nothing to remove")
        return EXIT_OK
    removed = await rights.remove(turns)
    detail = {
        "older_than": args.older_than,
        "persona": args.persona,
        "channel": args.channel,
        **removed.detail(),
        "by": [{"persona": p, "channel": c, "turns": n} for p, c, n in rows],
    }
    await record(store, "prune", platform=SYSTEM, actor=_who(args), detail=detail)
    print(_removed_text(removed))
    if removed.in_progress:
        print(_left_text(removed), file=sys.stderr)
    return EXIT_OK
