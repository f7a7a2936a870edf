"""A turn left behind by a killed botkit, staged in the database for the next start's pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botkit.testing.fake_slack import FakeSlack
from botkit.testing.testbot import TestBot


async def killed_on_status_line(
    tmp_path: Path, slack: FakeSlack, database: str, root: dict[str, Any], delivery_id: str
) -> int:
    """A first process started a turn for the mention ``root`` and streamed "The answer so"
    while the thread showed only the status line ("is thinking…"), then died: the turn's
    conversation id (the next start finds the turn unfinished, with no message to edit)."""
    channel, thread = root["channel"], root["ts"]
    slack.statuses[(channel, thread)] = ["is thinking…"]
    async with TestBot(tmp_path / "first", database_url=database) as crashed:
        conversation = await crashed.store.conversation_id("slack", "T0FAKE", channel, thread)
        ids = await crashed.store.start_turn(
            conversation, user_text="a question", user_id="U0ALICE", delivery_id=delivery_id,
            persona_name="general", persona_hash="h", model="m",
        )  # fmt: skip
        await crashed.store.mark_streaming(ids.assistant_message_id)
        await crashed.store.checkpoint(ids.assistant_message_id, answer="The answer so", reasoning=None)
    return conversation
