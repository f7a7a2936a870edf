"""What the core does with a 👍/👎 click: store it with its turn, and say what to tell the voter.

The adapter turns a platform's button click into a :class:`~botkit.events.FeedbackEvent`
(it never touches the database) and shows the voter the receipt's text privately (a Slack
ephemeral message, a Discord ephemeral interaction response); the buttons themselves stay as
they are, since every reader of the reply shares them. One vote per user and turn: a second
click changes it. A redelivered click is a duplicate and is acknowledged without a message.
"""

from __future__ import annotations

import logging

from botkit.adapter import FeedbackReceipt
from botkit.events import FeedbackEvent
from botkit.store import ConversationStore

log = logging.getLogger("botkit.pipeline.feedback")

_EMOJI = {"up": "👍", "down": "👎"}

THANKS = "Thanks for the feedback: your {emoji} is recorded."
CHANGED = "Thanks: your vote is changed to {emoji}."
UNCHANGED = "You already rated this answer {emoji}; click the other button to change your vote."
UNKNOWN = "This answer can no longer be rated (it is not in botkit's history any more)."
DISABLED = "Feedback is turned off for this bot; your click was not recorded."
UNAVAILABLE = "⚠️ botkit could not record your vote right now (its database is unavailable); please click again in a minute."


class FeedbackHandler:
    """Stores votes (``[feedback] enabled``) through the store's one-transaction vote write."""

    def __init__(self, store: ConversationStore, *, enabled: bool) -> None:
        self.store = store
        self.enabled = enabled

    async def vote(self, event: FeedbackEvent) -> FeedbackReceipt:
        emoji = _EMOJI[event.vote]
        if not self.enabled:
            return FeedbackReceipt("disabled", DISABLED)
        try:
            result = await self.store.record_vote(
                event.turn_id,
                platform=event.platform,
                voter=event.user,
                vote=event.vote,
                delivery_id=f"feedback:{event.delivery_id}",
            )
        except Exception:
            log.exception("could not store a vote on turn %s", event.turn_id)
            return FeedbackReceipt("unavailable", UNAVAILABLE)
        log.info("vote %s by %s on turn %s: %s", event.vote, event.user, event.turn_id, result)
        if result == "duplicate":
            return FeedbackReceipt("duplicate", None)
        text = {"recorded": THANKS, "changed": CHANGED, "unchanged": UNCHANGED, "unknown": UNKNOWN}[result]
        return FeedbackReceipt(result, text.format(emoji=emoji))
