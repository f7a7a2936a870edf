"""👍/👎 on Slack: Block Kit buttons on a reply's last message, and their clicks as votes.

The final ``chat.update`` of a complete answer sends ``blocks`` — the answer as ``section``
blocks (mrkdwn, at most 3,000 characters each) and one ``actions`` block with two buttons —
together with ``text``, which stays the message's searchable and notification text (and is
what Slack shows where blocks cannot be). Each button's ``value`` is the turn id, so a click
on a reply posted before a restart still names its turn. A click arrives as a ``block_actions``
interactive payload (Socket Mode envelope type ``interactive``, or an HTTP POST); bolt's
``app.action`` listener acks it and the vote is acknowledged to the voter alone with
``chat.postEphemeral``: the buttons are shared by everyone who reads the reply, so they are
left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from botkit.events import FeedbackEvent, Vote
from botkit_slack.events import PLATFORM

ACTION_UP = "botkit_feedback_up"
ACTION_DOWN = "botkit_feedback_down"
#: What bolt's ``app.action`` matches: both buttons' ``action_id``.
ACTION_PATTERN = re.compile(r"^botkit_feedback_(up|down)$")
SECTION_LIMIT = 3000  # a section block's text (Block Kit reference)
BLOCK_ID_PREFIX = "botkit_feedback"


def _sections(text: str) -> list[dict[str, Any]]:
    """``text`` as mrkdwn section blocks of at most :data:`SECTION_LIMIT` characters, cut at
    line ends where possible (a reply's message is at most 4,000 characters: two sections)."""
    parts: list[str] = []
    rest = text
    while len(rest) > SECTION_LIMIT:
        cut = rest.rfind("\n", 0, SECTION_LIMIT)
        if cut <= 0:
            cut = SECTION_LIMIT
        parts.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest.strip() or not parts:
        parts.append(rest or " ")
    return [{"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in parts]


def _button(action_id: str, emoji: str, turn_id: int, label: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": emoji, "emoji": True},
        "value": str(turn_id),
        "accessibility_label": label,
    }


def actions_block(turn_id: int) -> dict[str, Any]:
    """The two vote buttons, carrying ``turn_id`` in their ``value``."""
    return {
        "type": "actions",
        "block_id": f"{BLOCK_ID_PREFIX}:{turn_id}",
        "elements": [
            _button(ACTION_UP, "👍", turn_id, "Good answer"),
            _button(ACTION_DOWN, "👎", turn_id, "Bad answer"),
        ],
    }


def feedback_blocks(mrkdwn: str, turn_id: int) -> list[dict[str, Any]]:
    """The blocks of a final message: its text as sections, then the buttons."""
    return [*_sections(mrkdwn), actions_block(turn_id)]


def markdown_feedback_blocks(markdown: str, turn_id: int) -> list[dict[str, Any]]:
    """The blocks of a final message whose text is standard Markdown (a native stream's, as it
    shows): the text as one ``markdown`` block (docs.slack.dev/reference/block-kit/blocks/
    markdown-block: ``text`` up to 12,000 characters, rendered by Slack as Markdown), then the
    buttons. ``chat.update``'s ``markdown_text`` would show it the same way but takes no blocks
    (``markdown_text_conflict``), so a stream that Slack ended before its 👍/👎 came gets them so,
    with ``text`` as the notification fallback."""
    return [{"type": "markdown", "text": markdown}, actions_block(turn_id)]


def has_buttons(message: Mapping[str, Any], turn_id: int) -> bool:
    """Whether a message read back shows the buttons of ``turn_id`` (its ``actions`` block)."""
    blocks = message.get("blocks") or []
    block_id = f"{BLOCK_ID_PREFIX}:{turn_id}"
    return any(
        isinstance(b, Mapping) and b.get("type") == "actions" and b.get("block_id") == block_id
        for b in blocks
    )


def feedback_event(body: Mapping[str, Any], action: Mapping[str, Any]) -> FeedbackEvent | None:
    """The vote in a ``block_actions`` payload's button ``action``; None (logged by the caller)
    where it is not one of ours or carries no usable turn id."""
    match = ACTION_PATTERN.match(str(action.get("action_id") or ""))
    value = str(action.get("value") or "")
    user = body.get("user") or {}
    if match is None or not value.isdigit() or not user.get("id"):
        return None
    vote: Vote = "up" if match.group(1) == "up" else "down"
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    team = (body.get("team") or {}).get("id") or user.get("team_id") or ""
    # The same for every redelivery of this click (Slack resends an unacknowledged envelope).
    delivery = f"{user['id']}:{action.get('action_ts') or body.get('trigger_id')}"
    return FeedbackEvent(
        platform=PLATFORM,
        workspace=str(team),
        channel=str(channel),
        user=str(user["id"]),
        turn_id=int(value),
        vote=vote,
        delivery_id=delivery,
    )
