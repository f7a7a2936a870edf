"""A reply left on "Thinking…" by a crashed botkit is fixed when botkit starts again."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from restart_harness import killed_on_status_line

from botkit.testing.fake_slack import FakeSlack, SlackMessage
from botkit.testing.testbot import TestBot


async def test_half_written_reply_is_edited_to_say_it_was_interrupted(
    tmp_path: Path, slack: FakeSlack
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    root = slack.mention_event("a question asked just before the crash")
    slack.record_user_message(root)
    channel, thread = root["channel"], root["ts"]
    left_ts = slack.next_ts()
    slack.messages[(channel, left_ts)] = SlackMessage(
        channel=channel, ts=left_ts, text="The answer so far", user="U0BOTKIT", bot_id="B0BOTKIT",
        thread_ts=thread, history=["_Thinking…_", "The answer so far"],
    )  # fmt: skip

    # The first process: a turn started and its placeholder recorded, then it died.
    async with TestBot(tmp_path / "first", database_url=database) as crashed:
        conversation = await crashed.store.conversation_id("slack", "T0FAKE", channel, thread)
        ids = await crashed.store.start_turn(
            conversation, user_text="a question", user_id="U1", delivery_id="Ev1",
            persona_name="general", persona_hash="h", model="m",
        )  # fmt: skip
        await crashed.store.record_message_ids(ids.assistant_message_id, [left_ts])

    # The next start: the leftover is found, stored as interrupted and edited on Slack.
    (tmp_path / "second").mkdir()
    async with TestBot(
        tmp_path / "second", database_url=database, settings={"slack": slack.settings()}
    ) as bot:
        assert bot.app is not None
        serving = asyncio.create_task(bot.app.serve(bot.app.build_adapters(["slack"])))
        try:
            await slack.wait_for(
                lambda: "Interrupted: botkit restarted" in slack.messages[(channel, left_ts)].text
            )
            # The row is settled once the message says so; the pass is over when Socket Mode connects.
            await slack.wait_for_connections(1, timeout=30)
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        rows = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
    assert [r.status for r in rows] == ["interrupted"]
    assert slack.messages[(channel, left_ts)].text.startswith("⚠️")


async def test_a_turn_that_showed_only_a_status_line_gets_one_new_reply(
    tmp_path: Path, slack: FakeSlack
) -> None:
    """A turn killed while its thread showed only the status line ("is thinking…": no message
    to edit, ``progress``) gets one new reply in its thread at the next start: the partial
    answer stored so far and the interruption note; the turn is stored as interrupted."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    root = slack.mention_event("asked while 100 others were")
    slack.record_user_message(root)
    channel, thread = root["channel"], root["ts"]
    conversation = await killed_on_status_line(tmp_path, slack, database, root, "Ev2")

    (tmp_path / "second").mkdir()
    async with TestBot(
        tmp_path / "second", database_url=database, settings={"slack": slack.settings()}
    ) as bot:
        assert bot.app is not None
        serving = asyncio.create_task(bot.app.serve(bot.app.build_adapters(["slack"])))
        try:
            await slack.wait_for(
                lambda: any(
                    "Interrupted: botkit restarted" in m.text for m in slack.thread_replies(channel, thread)
                )
            )
            await asyncio.sleep(0.5)  # a second reply, if one were coming, would be posted by now
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        rows = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
    (reply,) = slack.thread_replies(channel, thread)
    assert reply.text.startswith("The answer so\n\n⚠️")
    assert slack.status_of(channel, thread) == ""  # the new reply cleared the status line
    assert rows[0].status == "interrupted"
