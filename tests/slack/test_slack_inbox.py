"""Accepted means persisted, on Slack: an event is acknowledged only once its delivery claim,
question and ``queued`` reply row are stored; one the database could not take is not
acknowledged (Slack redelivers it); a command that never becomes a model turn leaves no
``queued`` row behind for a restart to answer again."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from db_faults import PrivatePostgres
from polling import until
from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack


def _all_rows(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as db:
        return list(db.execute("SELECT role, status FROM messages ORDER BY id"))


async def test_an_event_the_database_cannot_take_is_not_acked_and_its_redelivery_is_answered_once(
    slack: FakeSlack,
    start_bot: StartBot,
    private_postgres: PrivatePostgres,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="botkit.pipeline.router")
    async with start_bot(database_url=private_postgres.url, core={"database": {"auto_migrate": True}}) as bot:
        bot.bot.standin.tokens_per_second = 500
        await slack.wait_for_connections(1)
        event = slack.mention_event("are you there?")
        await private_postgres.stop()
        lost = await slack.push_event(event, event_id="Ev0NOTSTORED")
        await until(lambda: any("could not record delivery" in r.message for r in caplog.records))
        await private_postgres.start()
        retry = await slack.push_event(
            event, event_id="Ev0NOTSTORED", retry_attempt=1, retry_reason="http_error"
        )
        await slack.wait_for_ack(retry["envelope_id"], timeout=30)
        await wait_answered(slack, event, until=STANDIN_DONE, timeout=30)
        await wait_idle(bot.bot)
    assert [a for a in slack.acks if a.get("envelope_id") == lost["envelope_id"]] == []  # never acked
    (reply,) = slack.thread_replies(event["channel"], event["ts"])  # one reply, no error notice
    assert STANDIN_DONE(reply.text)
    assert not any("could not take your question" in text for text in reply.history)


async def test_commands_that_never_reach_the_model_leave_no_queued_rows(
    slack: FakeSlack, start_bot: StartBot, tmp_path: Path
) -> None:
    database = tmp_path / "inbox.db"
    async with start_bot(
        database_url=f"sqlite+aiosqlite:///{database}", core={"bot": {"admin_users": ["U0ALICE"]}}
    ) as bot:
        await slack.wait_for_connections(1)
        listing = await slack.push_slash_command(slack.slash_command("/persona", "list"))
        await slack.wait_for_ack(listing["envelope_id"])
        # Admin commands answer the admin alone (chat.postEphemeral).
        await slack.wait_for(lambda: sum("Personas" in m.text for m in slack.ephemerals) == 1, 10)
        keyword = slack.mention_event("!persona list")
        await slack.push_event(keyword)
        await slack.wait_for(lambda: sum("Personas" in m.text for m in slack.ephemerals) == 2, 10)
        unknown = slack.mention_event("!persona nosuchthing")
        await slack.push_event(unknown)
        await slack.wait_for(
            lambda: (
                bool(slack.calls_of("chat.postEphemeral"))
                or bool(slack.thread_replies(unknown["channel"], unknown["ts"]))
            ),
            10,
        )
        await wait_idle(bot.bot)
        question = slack.mention_event("and a real question")
        await slack.push_event(question)
        await wait_answered(slack, question, until=STANDIN_DONE)
        await wait_idle(bot.bot)
        assert await bot.bot.store.unfinished_turns() == []
    # Only the model turn has rows; the commands' inbox rows were closed when they were answered.
    assert _all_rows(database) == [("user", "complete"), ("assistant", "complete")]
