"""👍/👎 on Slack, through slack-bolt and the fake Slack: the final reply's Block Kit buttons, a
click as a ``block_actions`` envelope over Socket Mode, and the vote in the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botkit_slack.markers import metadata
from slack_harness import StartBot, wait_answered, wait_idle

from botkit.events import ConversationKey
from botkit.markers import ReplyMarker
from botkit.plugins import CommandContext, Plugin
from botkit.testing.fake_slack import FakeSlack, SlackMessage
from botkit.testing.testbot import TestBot

UP, DOWN = "botkit_feedback_up", "botkit_feedback_down"


async def _answered(slack: FakeSlack, bot: TestBot, question: str) -> tuple[SlackMessage, int, str]:
    """Ask by mention; the reply's message, its turn id and its persona hash, once stored."""
    event = slack.mention_event(question)
    await slack.push_event(event)
    await wait_answered(slack, event)
    await wait_idle(bot)
    conversation = await bot.store.conversation_id("slack", slack.team_id, event["channel"], event["ts"])
    _, turn = await bot.store.messages(conversation)
    assert turn.status == "complete" and turn.persona_hash
    (reply,) = slack.thread_replies(event["channel"], event["ts"])
    return reply, turn.id, turn.persona_hash


async def _click(slack: FakeSlack, reply: SlackMessage, action: str, user: str) -> None:
    ephemerals = len(slack.ephemerals)
    envelope = await slack.click_button(reply, action, user=user)
    await slack.wait_for_ack(envelope["envelope_id"])
    await slack.wait_for(lambda: len(slack.ephemerals) > ephemerals)


async def test_the_final_reply_carries_the_buttons_and_the_partial_versions_do_not(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot(core={"stream": {"edit_interval": 0.02}}) as bot:
        bot.bot.standin.tokens_per_second = 300
        await slack.wait_for_connections(1)
        reply, turn_id, _ = await _answered(slack, bot.bot, "Tell me something long.")
    assert reply.edits >= 2  # it streamed: there were partial versions
    assert all(blocks is None for blocks in reply.blocks_history[:-1])  # placeholder and partials
    buttons = reply.buttons()
    assert [(b["action_id"], b["text"]["text"], b["value"]) for b in buttons] == [
        (UP, "👍", str(turn_id)),
        (DOWN, "👎", str(turn_id)),
    ]
    assert reply.blocks is not None
    sections = [b["text"]["text"] for b in reply.blocks if b["type"] == "section"]
    assert "".join(sections) == reply.text  # the blocks show the answer; text stays its fallback
    with_blocks = [c for c in slack.calls_of("chat.update") if c.args.get("blocks")]
    assert len(with_blocks) == 1  # added by the final edit itself, not an extra one after it


async def test_a_click_stores_one_vote_and_a_second_click_changes_it(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        await slack.wait_for_connections(1)
        reply, turn_id, version = await _answered(slack, bot.bot, "What is 2+2?")
        await _click(slack, reply, UP, "U0ALICE")
        first = await bot.bot.store.votes_on(turn_id)
        await _click(slack, reply, DOWN, "U0ALICE")
        changed = await bot.bot.store.votes_on(turn_id)
        await _click(slack, reply, DOWN, "U0BOB")
        both = await bot.bot.store.votes_on(turn_id)
    assert [(v.voter, v.vote, v.persona_name, v.persona_hash) for v in first] == [
        ("U0ALICE", "up", "general", version)
    ]
    assert [(v.voter, v.vote) for v in changed] == [("U0ALICE", "down")]  # changed, not added
    assert [(v.voter, v.vote) for v in both] == [("U0ALICE", "down"), ("U0BOB", "down")]
    thanks = [(m.user, m.text, m.thread_ts) for m in slack.ephemerals]
    assert thanks == [
        ("U0ALICE", "Thanks for the feedback: your 👍 is recorded.", reply.thread_ts),
        ("U0ALICE", "Thanks: your vote is changed to 👎.", reply.thread_ts),
        ("U0BOB", "Thanks for the feedback: your 👎 is recorded.", reply.thread_ts),
    ]
    assert reply.buttons() == slack.messages[(reply.channel, reply.ts)].buttons()  # left as they were


async def test_a_click_on_a_reply_from_before_a_restart_still_counts(
    tmp_path: Path, slack: FakeSlack, start_bot: StartBot
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with start_bot(database_url=database) as first:
        await slack.wait_for_connections(1)
        reply, turn_id, version = await _answered(slack, first.bot, "What is 3+3?")
    async with start_bot(database_url=database) as second:
        await slack.wait_for(lambda: len(slack.sockets) == 1)
        await _click(slack, reply, UP, "U0ALICE")
        (vote,) = await second.bot.store.votes_on(turn_id)
    assert (vote.voter, vote.vote, vote.persona_hash) == ("U0ALICE", "up", version)


async def test_no_buttons_on_an_error_or_on_a_command_reply(slack: FakeSlack, start_bot: StartBot) -> None:
    pong: Plugin[Any] = Plugin("pong")

    @pong.command("ping", "Answer pong")
    async def ping(ctx: CommandContext[Any]) -> None:
        await ctx.respond("pong")

    async with start_bot(plugins=[pong], core={"llm": {"retry_interrupted": False}}) as bot:
        await slack.wait_for_connections(1)
        bot.bot.standin.inject_failure("http500")
        failing = slack.mention_event("What is 4+4?")
        await slack.push_event(failing)
        await wait_answered(slack, failing, until=lambda text: "500" in text)
        await wait_idle(bot.bot)
        command = slack.mention_event("!ping")
        await slack.push_event(command)
        await wait_answered(slack, command, until=lambda text: text == "pong")
    replies = slack.thread_replies(failing["channel"], failing["ts"]) + slack.thread_replies(
        command["channel"], command["ts"]
    )
    assert len(replies) == 2
    assert all(not m.buttons() and all(b is None for b in m.blocks_history) for m in replies)
    assert not [c for c in slack.calls if c.args.get("blocks")]


async def test_feedback_can_be_turned_off(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot(core={"feedback": {"enabled": False}}) as bot:
        await slack.wait_for_connections(1)
        reply, _, _ = await _answered(slack, bot.bot, "What is 5+5?")
    assert reply.buttons() == [] and reply.blocks is None


async def test_a_native_stream_gets_its_buttons_from_stop_stream(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot(streaming="native") as bot:
        bot.bot.standin.tokens_per_second = 400
        bot.bot.standin.script_reply("A streamed answer " + " ".join(f"w{i}" for i in range(40)))
        await slack.wait_for_connections(1)
        reply, turn_id, _ = await _answered(slack, bot.bot, "Stream it.")
        await _click(slack, reply, UP, "U0ALICE")
        (vote,) = await bot.bot.store.votes_on(turn_id)
    (stop,) = slack.calls_of("chat.stopStream")
    assert [b["value"] for b in stop.args["blocks"][0]["elements"]] == [str(turn_id)] * 2
    assert [b["action_id"] for b in reply.buttons()] == [UP, DOWN]
    assert reply.text.startswith("A streamed answer")  # the streamed text itself is unchanged
    assert (vote.voter, vote.vote) == ("U0ALICE", "up")


async def test_a_redelivered_click_is_counted_once(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot() as bot:
        await slack.wait_for_connections(1)
        reply, turn_id, _ = await _answered(slack, bot.bot, "What is 7+7?")
        envelope = await slack.click_button(reply, DOWN, user="U0ALICE")
        await slack.wait_for_ack(envelope["envelope_id"])
        await slack.wait_for(lambda: len(slack.ephemerals) == 1)
        again = {**envelope, "envelope_id": "redelivered-1", "retry_attempt": 1, "retry_reason": "timeout"}
        await slack.sockets[0].send_str(json.dumps(again))
        await slack.wait_for_ack("redelivered-1")
        votes = await bot.bot.store.votes_on(turn_id)
    assert [(v.voter, v.vote) for v in votes] == [("U0ALICE", "down")]
    assert len(slack.ephemerals) == 1  # thanked once


async def test_the_restart_adds_missing_buttons_once_with_the_text_unchanged(
    tmp_path: Path, slack: FakeSlack, start_bot: StartBot
) -> None:
    """``SlackAdapter.add_feedback``, the restart pass's call for a complete answer found shown
    without its 👍/👎 (the view's last call cut by a kill; here an answer shown with feedback
    off): one ``chat.update`` gives the message the final edit's blocks and the final marker,
    its text as it was; a second call (a second restart pass) reads them back and sends
    nothing; a click on them is a stored vote."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with start_bot(database_url=database, core={"feedback": {"enabled": False}}) as first:
        await slack.wait_for_connections(1)
        reply, turn_id, version = await _answered(slack, first.bot, "What is 6+6?")
    assert reply.buttons() == [] and reply.blocks is None
    text, history = reply.text, list(reply.history)
    async with start_bot(database_url=database) as second:
        await slack.wait_for(lambda: len(slack.sockets) == 1)
        key = ConversationKey("slack", slack.team_id, reply.channel, str(reply.thread_ts))
        updates = len(slack.calls_of("chat.update"))
        assert await second.adapter.add_feedback(key, reply.ts, turn_id)
        assert await second.adapter.add_feedback(key, reply.ts, turn_id)  # shown: nothing sent
        assert len(slack.calls_of("chat.update")) == updates + 1
        await _click(slack, reply, UP, "U0ALICE")
        (vote,) = await second.bot.store.votes_on(turn_id)
    message = slack.messages[(reply.channel, reply.ts)]
    assert message.text == text and message.history == [*history, text]  # the text unchanged
    assert [(b["action_id"], b["value"]) for b in message.buttons()] == [
        (UP, str(turn_id)),
        (DOWN, str(turn_id)),
    ]
    assert "".join(b["text"]["text"] for b in message.blocks or [] if b["type"] == "section") == text
    assert message.metadata == metadata(ReplyMarker(turn_id, "final"))
    assert (vote.voter, vote.vote, vote.persona_hash) == ("U0ALICE", "up", version)
