"""Slack events -> :class:`~botkit.events.IncomingMessage`: what the bot answers, and where.

Pure functions of the event payload, so the rules are easy to read and to test:

- ``app_mention`` (channels the app is in): answered in the message's thread.
- ``message`` with ``channel_type`` ``im``: a direct message, answered (top-level DMs share one
  conversation per DM; a reply in a DM thread stays in that thread).
- ``message`` in a channel thread: a follow-up. It is answered only if no mention is required
  there and the bot is part of the thread (checked by the caller). A message that mentions the
  bot is left to its ``app_mention`` twin, which Slack sends too: one reply, not two.
- Ignored: the bot's own and other bots' messages, edits, deletions and other subtypes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botkit.events import IncomingMessage
from botkit_slack.settings import SlackSettings

PLATFORM = "slack"
DM_THREAD = "dm"  # the conversation of top-level messages in a DM

# A user's message with files or "also send to channel" is still a user's message.
_USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is in this workspace (from ``auth.test``)."""

    user_id: str
    bot_id: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message to answer, where to answer it, and whether the thread must be checked first."""

    message: IncomingMessage
    reply_thread_ts: str | None  # None: answer top-level (a DM)
    needs_thread_check: bool = False


def mention_pattern(user_id: str) -> re.Pattern[str]:
    return re.compile(rf"<@{re.escape(user_id)}(?:\|[^>]*)?>")


def strip_mention(text: str, user_id: str) -> str:
    """Remove the bot's own ``<@U...>`` mentions and tidy the spaces they leave."""
    stripped = mention_pattern(user_id).sub(" ", text)
    return re.sub(r"[ \t]{2,}", " ", stripped).strip()


def _from_user(event: Mapping[str, Any], me: BotIdentity) -> bool:
    if event.get("bot_id") or event.get("bot_profile") or event.get("subtype") not in _USER_SUBTYPES:
        return False
    if "edited" in event or event.get("hidden"):
        return False
    user = event.get("user")
    return bool(user) and user != me.user_id and "ts" in event


def _message(
    body: Mapping[str, Any], event: Mapping[str, Any], me: BotIdentity, thread: str, *, direct: bool
) -> IncomingMessage:
    return IncomingMessage(
        platform=PLATFORM,
        workspace=str(body.get("team_id") or event.get("team") or ""),
        channel=str(event["channel"]),
        thread=thread,
        user=str(event["user"]),
        text=strip_mention(str(event.get("text") or ""), me.user_id),
        delivery_id=str(body["event_id"]),
        is_direct=direct,
    )


def from_mention(body: Mapping[str, Any], event: Mapping[str, Any], me: BotIdentity) -> Inbound | None:
    """An ``app_mention``: answer in the thread of the mentioning message."""
    if not _from_user(event, me) or "channel" not in event:
        return None
    thread_ts = str(event.get("thread_ts") or event["ts"])
    return Inbound(_message(body, event, me, thread_ts, direct=False), thread_ts)


def from_message(
    body: Mapping[str, Any], event: Mapping[str, Any], me: BotIdentity, settings: SlackSettings
) -> Inbound | None:
    """A ``message`` event: a DM, or a follow-up in a thread; None when the bot should stay quiet."""
    if not _from_user(event, me) or "channel" not in event:
        return None
    channel_type = event.get("channel_type")
    thread_ts = event.get("thread_ts")
    if channel_type == "im":
        thread = str(thread_ts) if thread_ts else DM_THREAD
        return Inbound(_message(body, event, me, thread, direct=True), str(thread_ts) if thread_ts else None)
    if not thread_ts or thread_ts == event["ts"]:
        return None  # a top-level channel message: only a mention (app_mention) is answered
    if mention_pattern(me.user_id).search(str(event.get("text") or "")):
        return None  # its app_mention twin answers it
    if settings.mention_required_in(str(event["channel"])):
        return None
    return Inbound(_message(body, event, me, str(thread_ts), direct=False), str(thread_ts), True)
