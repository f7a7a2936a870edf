"""A :class:`~botkit.events.LiveReply` that records what a user would see, for tests.

It keeps the current text of every message of the reply and a log of every call, and can play
a platform that rate-limits (raise :class:`~botkit.events.RateLimited` on chosen edits), so a
plugin's or adapter's test asserts what lands on screen, not what the code intended.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from botkit.events import LiveReply, RateLimited


@dataclass(frozen=True)
class ReplyCall:
    method: str
    message_id: str | None
    text: str


class RecordingReply(LiveReply):
    def __init__(
        self,
        *,
        max_chars: int = 4000,
        rate_key: str = "test",
        edit_rate: float | None = None,
        edit_burst: int = 1,
        rate_limit_edits: dict[int, float] | None = None,
        private_notices: bool = False,
        feedback_buttons: bool = False,
    ) -> None:
        """``private_notices``: play a platform that can show a notice to the asker alone (Slack
        ephemeral, Discord ephemeral): notices go to :attr:`notices`, not into the reply.
        ``feedback_buttons``: play a platform that shows 👍/👎; :attr:`buttons` maps each
        message id that got them to the turn id they carry."""
        self.max_chars = max_chars
        self.rate_key = rate_key
        self.edit_rate = edit_rate
        self.edit_burst = edit_burst
        self.messages: list[str] = []
        self.calls: list[ReplyCall] = []
        self.finished = asyncio.Event()
        self.error: str | None = None
        self._edit_attempts = 0
        self._rate_limit_edits = dict(rate_limit_edits or {})
        self.private_notices = private_notices
        self.notices: list[str] = []
        self.feedback_buttons = feedback_buttons
        self.buttons: dict[str, int] = {}

    @property
    def text(self) -> str:
        """All messages of the reply, joined as a reader would read them."""
        return "\n".join(self.messages)

    @property
    def edits(self) -> int:
        return sum(1 for c in self.calls if c.method == "edit")

    async def post_placeholder(self, text: str) -> str:
        self.messages.append(text)
        self.calls.append(ReplyCall("post_placeholder", "0", text))
        return "0"

    async def edit(self, message_id: str, text: str) -> None:
        self._edit_attempts += 1
        retry_after = self._rate_limit_edits.pop(self._edit_attempts, None)
        if retry_after is not None:
            self.calls.append(ReplyCall("rate_limited", message_id, text))
            raise RateLimited(retry_after)
        self.messages[int(message_id)] = text
        self.calls.append(ReplyCall("edit", message_id, text))

    async def post_continuation(self, text: str) -> str:
        self.messages.append(text)
        message_id = str(len(self.messages) - 1)
        self.calls.append(ReplyCall("post_continuation", message_id, text))
        return message_id

    async def edit_with_feedback(self, message_id: str, text: str, turn_id: int) -> None:
        self.messages[int(message_id)] = text
        self.buttons[message_id] = turn_id
        self.calls.append(ReplyCall("edit_with_feedback", message_id, text))

    async def post_notice(self, text: str) -> bool:
        if not self.private_notices:
            return False
        self.notices.append(text)
        self.calls.append(ReplyCall("post_notice", None, text))
        return True

    async def finish(self) -> None:
        self.calls.append(ReplyCall("finish", None, ""))
        self.finished.set()

    async def fail(self, error: str) -> None:
        self.error = error
        self.calls.append(ReplyCall("fail", None, error))
        self.finished.set()
