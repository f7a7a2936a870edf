"""The cheapest visible progress (issue 11, goal 3): a status line instead of a placeholder when
the workspace's ``chat.update`` budget cannot stream every reply, the final answer as one new
message with its buttons; partial text as before when it can.

The fake Slack enforces Slack's published per-method limits (:meth:`FakeSlack.enforce_real_limits`)
and the bot runs with the ``[slack]`` defaults. The tests look at what a user sees (every version
of every message, every status a thread showed) and what is stored; they count calls and 429s,
never times.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_harness import Running, StartBot, wait_idle

from botkit.testing.fake_slack import FakeSlack, SlackMessage

DEFAULTS = {"edits_per_minute": 40, "edit_burst": 3, "posts_per_minute": 55, "post_burst": 3}


def _answer(index: int) -> str:
    return f"answer{index} " + " ".join(f"word{i}" for i in range(40))


def _mine(slack: FakeSlack, event: dict[str, Any]) -> list[SlackMessage]:
    """Every message of this reply, deleted ones included."""
    return [
        m
        for m in [*slack.messages.values(), *slack.deleted]
        if m.channel == event["channel"] and m.thread_ts == event["ts"] and m.bot_id == slack.bot_id
    ]


def _thread(slack: FakeSlack, event: dict[str, Any]) -> list[str]:
    return [m.text for m in slack.thread_replies(event["channel"], event["ts"])]


async def _ask(bot: Running, slack: FakeSlack, questions: int, channels: int) -> list[dict[str, Any]]:
    """``questions`` mentions at once over ``channels`` channels; waits until every turn is
    stored and every thread shows one message."""
    for index in range(questions):
        bot.bot.standin.script_reply(_answer(index))
    await slack.wait_for_connections(1)
    # One asker each: [llm] max_in_flight_per_user would otherwise queue one user's questions.
    events = [
        slack.mention_event(f"question {i}", channel=f"C0P{i % channels}", user=f"U0ASKER{i}")
        for i in range(questions)
    ]
    await asyncio.gather(*(slack.push_event(e) for e in events))
    await slack.wait_for(lambda: all(len(_thread(slack, e)) == 1 for e in events), timeout=120)
    await wait_idle(bot.bot, timeout=120)
    await slack.wait_for(lambda: all(len(_thread(slack, e)) == 1 for e in events), timeout=60)
    return events


async def _stored_answer(bot: Running, slack: FakeSlack, event: dict[str, Any]) -> str:
    conversation = await bot.bot.store.conversation_id("slack", slack.team_id, event["channel"], event["ts"])
    _question, turn = await bot.bot.store.messages(conversation)
    assert turn.status == "complete"
    return turn.content or ""


async def test_a_hundred_questions_show_status_lines_and_one_final_message_each(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """100 questions in 10 channels under Slack's real limits: no 429, every thread ends with
    exactly one message showing the stored answer (with its buttons), and the replies the edit
    budget could not stream showed a status line, cleared by that message, and were never edited."""
    slack.enforce_real_limits()
    async with start_bot(**DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 40
        events = await _ask(bot, slack, 100, 10)

        assert slack.rate_limited() == []
        with_status = 0
        for event in events:
            (final,) = slack.thread_replies(event["channel"], event["ts"])
            assert final.text == await _stored_answer(bot, slack, event)
            assert final.buttons(), "the final message carries 👍/👎"
            statuses = slack.statuses.get((event["channel"], event["ts"]), [])
            if statuses:
                with_status += 1
                # Shown, then cleared by the final message, which is the reply's only message.
                assert statuses == ["is thinking…", ""]
                assert [m.history for m in _mine(slack, event)] == [[final.text]]
        # Most replies could not be streamed within the budget: a status line each, no edit.
        assert with_status >= 50
        assert len(slack.calls_of("assistant.threads.setStatus")) == with_status
        # Within the minute this run lasts: never over Slack's 50 (edit_window "rolling" may
        # spend all of them on finals; the bucket alone stayed under 43).
        assert len(slack.calls_of("chat.update")) <= 50


async def test_a_hundred_finals_spend_the_edit_window_then_the_next_questions_still_land(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """100 questions in 10 channels, then 20 more while that minute's ``chat.update`` calls are
    spent, under Slack's real limits and the ``[slack]`` defaults (``edit_window = "auto"``:
    rolling): no 429 at any point; every thread ends with exactly one message, the stored answer
    with its buttons; every reply that got a placeholder had its final as an edit (finals first:
    never posted anew because partial edits held the budget)."""
    slack.enforce_real_limits()
    async with start_bot(**DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 40
        events = await _ask(bot, slack, 100, 10)
        events += await _ask(bot, slack, 20, 10)

        assert slack.rate_limited() == []
        edited = 0
        for event in events:
            (final,) = slack.thread_replies(event["channel"], event["ts"])
            assert final.text == await _stored_answer(bot, slack, event)
            assert final.buttons()
            mine = _mine(slack, event)
            if len(mine) > 1 or slack.statuses.get((event["channel"], event["ts"])) is None:
                # It had a message before the final (a placeholder, or its first answer text
                # posted anew): the final is an edit of it, not posted anew behind partial edits.
                assert len(final.history) > 1, [m.history for m in mine]
                edited += 1
        assert edited >= 40  # the window's slots went to finals
        assert len(slack.calls_of("chat.update")) <= 50  # the run lasts under a minute


async def test_ten_questions_stream_partial_text_and_show_no_status(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """10 questions in 10 channels under the same limits: the budget can stream them all, so
    each reply shows partial answer text before its final text, and no status line is set."""
    slack.enforce_real_limits()
    async with start_bot(**DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 15  # about 3 s of answer: several edits' worth
        events = await _ask(bot, slack, 10, 10)

        assert slack.rate_limited() == []
        assert slack.calls_of("assistant.threads.setStatus") == []
        for event in events:
            stored = await _stored_answer(bot, slack, event)
            assert _thread(slack, event) == [stored]
            versions = [v for m in _mine(slack, event) for v in m.history]
            assert any(v.startswith("answer") and v != stored for v in versions), versions


async def test_progress_status_always_shows_a_status_line_and_message_never_does(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """``progress = "status"`` shows the status line for a single reply too; its answer is one
    message posted with its buttons (no ``chat.update``). ``"message"`` never calls setStatus."""
    async with start_bot(progress="status", status_text="is looking it up…") as bot:
        events = await _ask(bot, slack, 1, 1)
        (event,) = events
        assert slack.statuses[(event["channel"], event["ts"])] == ["is looking it up…", ""]
        assert slack.calls_of("chat.update") == []
        (final,) = slack.thread_replies(event["channel"], event["ts"])
        assert final.history == [await _stored_answer(bot, slack, event)] and final.buttons()
    before = len(slack.calls_of("assistant.threads.setStatus"))
    async with start_bot(progress="message", edits_per_minute=1, edit_burst=1) as bot:
        await _ask(bot, slack, 5, 5)
        assert len(slack.calls_of("assistant.threads.setStatus")) == before


async def test_a_workspace_that_refuses_status_lines_gets_placeholders(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """setStatus refused (an app without the assistant feature): the reply posts a placeholder
    and streams as usual, and the workspace is not asked again."""
    slack.fail_with_error("assistant.threads.setStatus", "not_allowed_token_type", count=10)
    async with start_bot(progress="status") as bot:
        events = await _ask(bot, slack, 2, 2)
        assert len(slack.calls_of("assistant.threads.setStatus")) == 1
        for event in events:
            (final,) = slack.thread_replies(event["channel"], event["ts"])
            assert final.text == await _stored_answer(bot, slack, event)
            assert final.history[0] == "_Thinking…_"  # a placeholder, edited into the answer


async def test_a_long_answer_after_a_status_line_is_posted_in_pieces_the_last_with_buttons(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """A status-line reply whose answer outgrows one message: each piece is posted once (never
    edited), in order, the last one with the buttons; together they are the stored answer."""
    long = " ".join(f"sentence{i} of a long answer." for i in range(60))
    async with start_bot(progress="status", max_chars=400) as bot:
        bot.bot.standin.script_reply(long)
        await slack.wait_for_connections(1)
        event = slack.mention_event("a long one", user="U0LONG")
        await slack.push_event(event)
        await slack.wait_for(lambda: any(m.buttons() for m in _mine(slack, event)), timeout=30)
        await wait_idle(bot.bot, timeout=30)
        stored = await _stored_answer(bot, slack, event)
    messages = slack.thread_replies(event["channel"], event["ts"])
    assert len(messages) >= 3
    assert all(len(m.history) == 1 for m in messages), "posted once each, never edited"
    assert [bool(m.buttons()) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert " ".join(m.text for m in messages).split() == stored.split()
    assert slack.statuses[(event["channel"], event["ts"])] == ["is thinking…", ""]


async def test_a_failed_turn_after_a_status_line_posts_its_error_once(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """The model fails while the thread shows the status line: one message with the visible
    error, no buttons, and the status line cleared."""
    async with start_bot(progress="status", core={"llm": {"retry_interrupted": False}}) as bot:
        await slack.wait_for_connections(1)
        bot.bot.standin.inject_failure("http500")
        event = slack.mention_event("this one fails", user="U0FAIL")
        await slack.push_event(event)
        await slack.wait_for(lambda: any("500" in m.text for m in _mine(slack, event)), timeout=30)
        await wait_idle(bot.bot, timeout=30)
    (message,) = slack.thread_replies(event["channel"], event["ts"])
    assert "500" in message.text and message.history == [message.text]
    assert not message.buttons()
    assert slack.status_of(event["channel"], event["ts"]) == ""
