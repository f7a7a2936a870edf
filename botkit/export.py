"""``botkit export``: a thread's (or a user's) stored history as JSON or Markdown.

The JSON is an interface (people keep exports, other tools read them), so its shape is fixed
and versioned (``botkit_export``: 1, documented in README.md): one object with ``threads``, each
with its key and its ``turns`` oldest first, each turn a question and its answer. A field with no
value is ``null``, never left out; ``reasoning`` is ``null`` where none was stored (a persona
with ``store_reasoning: false``). The Markdown is the same content for a person to read.

How a user names a thread (:func:`parse_thread`): the key botkit prints everywhere,
``platform:workspace/channel/thread`` (``slack:T0TEAM/C0LEGAL/1712345678.000100``,
``console:/local/default``); the same without the workspace (``slack:C0LEGAL/1712345678.000100``);
or a link to a message of the thread, as Slack ("Copy link") or Discord ("Copy Message Link")
give it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botkit.store.models import utcnow
from botkit.store.records import StoredMessage
from botkit.store.rights import Thread

FORMAT_VERSION = 1

_SLACK_TS = re.compile(r"^p(\d{10})(\d{6})$")


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """One reading of what a user typed: ``None`` matches any workspace or channel."""

    platform: str
    workspace: str | None
    channel: str | None
    thread: str


class BadThread(ValueError):
    """Text that names no thread in any form botkit knows; ``str()`` shows the forms."""


_FORMS = (
    "platform:workspace/channel/thread (e.g. slack:T0TEAM/C0LEGAL/1712345678.000100, "
    "console:/local/default), platform:channel/thread, or a Slack or Discord message link"
)


def parse_thread(text: str) -> list[ThreadRef]:
    """Every reading of ``text`` as a thread (a console thread name may itself hold ``/``,
    so ``console:local/a/b`` is tried both as workspace ``local`` and as channel ``local``)."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        return _link(text)
    platform, colon, rest = text.partition(":")
    if not colon or not platform or "/" not in rest:
        raise BadThread(f"{text!r} is not a thread; give {_FORMS}")
    refs = []
    parts = rest.split("/", 2)
    if len(parts) == 3 and parts[1] and parts[2]:
        refs.append(ThreadRef(platform, parts[0], parts[1], parts[2]))
    channel, _, thread = rest.partition("/")
    if channel and thread:
        refs.append(ThreadRef(platform, None, channel, thread))
    if not refs:
        raise BadThread(f"{text!r} is not a thread; give {_FORMS}")
    return refs


def _link(url: str) -> list[ThreadRef]:
    parts = urlsplit(url)
    path = [p for p in parts.path.split("/") if p]
    host = parts.hostname or ""
    if host.endswith("slack.com") and len(path) == 3 and path[0] == "archives":
        match = _SLACK_TS.match(path[2])
        if match is not None:
            # The thread's root: ``thread_ts`` in a reply's link, else the message itself.
            root = parse_qs(parts.query).get("thread_ts", [f"{match.group(1)}.{match.group(2)}"])[0]
            return [ThreadRef("slack", None, path[1], root)]
    if host.endswith(("discord.com", "discordapp.com")) and len(path) in (3, 4) and path[0] == "channels":
        return _discord(path[1], path[2], path[3] if len(path) == 4 else None)
    raise BadThread(f"{url!r} is not a Slack or Discord message link; give {_FORMS}")


def _discord(guild: str, channel: str, message: str | None) -> list[ThreadRef]:
    """The conversations a Discord link may be in (see the Discord adapter's keys): a DM
    (``@me``) is keyed by its channel; a thread by its own id (under its parent channel, which
    the link does not name); a mention in a channel by the mention's message id."""
    if guild == "@me":
        return [ThreadRef("discord", "dm", channel, channel)]
    readings = [ThreadRef("discord", guild, None, channel)]
    if message is not None:
        readings.append(ThreadRef("discord", guild, channel, message))
    return readings


def _at(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _turn(question: StoredMessage | None, answer: StoredMessage | None) -> dict[str, Any]:
    return {
        "asked_at": _at(question.created_at if question else None),
        "user": question.user_id if question else (answer.user_id if answer else None),
        "question": question.content if question else None,
        "answer": answer.content if answer else None,
        "status": answer.status if answer else None,
        "answered_at": _at(answer.updated_at if answer else None),
        "persona": answer.persona_name if answer else None,
        "persona_hash": answer.persona_hash if answer else None,
        "model": answer.model if answer else None,
        "reasoning": (answer.reasoning or None) if answer else None,
        "error": answer.error if answer else None,
    }


def thread_object(
    thread: Thread, messages: Sequence[StoredMessage], user: str | None = None
) -> dict[str, Any]:
    """One thread as the export shows it; ``user``: only that user's questions and their answers."""
    answers: dict[int | None, list[StoredMessage]] = {}
    for m in messages:
        if m.role == "assistant":
            answers.setdefault(m.reply_to_id, []).append(m)
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "user" and (user is None or m.user_id == user):
            replies: list[StoredMessage | None] = list(answers.get(m.id, [])) or [None]
            turns.extend(_turn(m, a) for a in replies)
    if user is None:
        turns.extend(_turn(None, a) for a in answers.get(None, []))  # an answer whose question went
    key = thread.key
    return {
        "thread": str(key),
        "platform": key.platform,
        "workspace": key.workspace,
        "channel": key.channel,
        "thread_id": key.thread,
        "turns": turns,
    }


def document(threads: list[dict[str, Any]], *, user: str | None = None) -> dict[str, Any]:
    """The whole export: version, when, whose (``user`` for ``--user``), and the threads."""
    return {"botkit_export": FORMAT_VERSION, "exported_at": _at(utcnow()), "user": user, "threads": threads}


def as_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _when(iso: str | None) -> str:
    return "?" if iso is None else f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M:%S} UTC"


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines() or [""])


def as_markdown(doc: dict[str, Any]) -> str:
    """The export for a person: one section per thread, each question quoted, then its answer
    with who answered (persona and version), its status and, where stored, its reasoning."""
    whose = f" of user {doc['user']}" if doc["user"] else ""
    lines = [f"# botkit export{whose}", "", f"Exported {_when(doc['exported_at'])}."]
    for thread in doc["threads"]:
        lines += ["", f"## Thread `{thread['thread']}`", ""]
        lines.append(f"{len(thread['turns'])} turn(s).")
        for number, turn in enumerate(thread["turns"], 1):
            lines += ["", f"### {number}. {turn['user'] or 'unknown user'}, {_when(turn['asked_at'])}", ""]
            lines.append(
                _quoted(turn["question"]) if turn["question"] is not None else "_(question removed)_"
            )
            if turn["status"] is None:
                lines += ["", "_(no answer stored)_"]
                continue
            version = f"{turn['persona']} @ {(turn['persona_hash'] or '?')[:12]}" if turn["persona"] else "-"
            lines += ["", f"**Answer** ({version}, {turn['status']}, {_when(turn['answered_at'])}):", ""]
            lines.append(turn["answer"] or "_(empty)_")
            if turn["error"]:
                lines += ["", f"_Error: {turn['error']}_"]
            if turn["reasoning"]:
                lines += ["", "**Reasoning:**", "", _quoted(turn["reasoning"])]
    return "\n".join(lines) + "\n"
