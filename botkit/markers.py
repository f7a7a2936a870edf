"""Reply markers: how the restart pass finds, on the platform, the messages a turn posted.

A process can die between posting a message and recording its id (one write later), or between
posting a final text anew and deleting the placeholder it replaced. The database then does not
know every message of the turn, but the platform does: every message botkit posts for a turn
carries a :class:`ReplyMarker` (the turn's id and what the message shows) where the platform
keeps something readable with a message (Slack: message metadata). The restart pass lists a
turn's messages by it (:meth:`botkit.adapter.Adapter.reply_messages`) instead of trusting the
recorded ids alone.

Neutral: no platform SDK here; each adapter maps a marker to its platform's field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

#: A message's part in its turn: the first message ("Thinking…"), a streaming view (partial
#: answer, continuation), or the final view (the complete answer, or the error or refusal the
#: turn ended in).
Role = Literal["placeholder", "partial", "final"]

ROLES: tuple[Role, ...] = ("placeholder", "partial", "final")


@dataclass(frozen=True, slots=True)
class ReplyMarker:
    """What a message of a turn's reply carries: the turn (its assistant row's id) and its role."""

    turn: int
    role: Role = "placeholder"

    def as_role(self, role: Role) -> ReplyMarker:
        return self if role == self.role else replace(self, role=role)


@dataclass(frozen=True, slots=True)
class ShownMessage:
    """One message as the platform shows it now, read back by the restart pass.

    ``text`` is the platform's text (after the adapter's conversion, e.g. Slack mrkdwn), to be
    compared with :meth:`botkit.events.LiveReply.rendered` of what botkit meant to show;
    ``marker`` is None where the platform keeps none (the message was found by its recorded id).
    """

    message_id: str
    text: str
    marker: ReplyMarker | None = None


class Listing(list[ShownMessage]):
    """What :meth:`botkit.adapter.Adapter.reply_messages` found, oldest first, and whether the
    search stopped at one of its bounds before the end of the places it read (``cut``: Discord's
    window after the turn's acceptance, or its page limit): then a message of the turn, posted
    and never recorded, may lie past it, and the restart's note says so where it finds none."""

    cut: bool = False

    @classmethod
    def of(cls, messages: list[ShownMessage], *, cut: bool = False) -> Listing:
        listing = cls(messages)
        listing.cut = cut
        return listing
