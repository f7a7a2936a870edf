"""Delivery under Slack's per-method limits (issue 11): each method its own budget, nothing waits
for the placeholder, and the cheapest visible progress when the ``chat.update`` budget is short.

The fake Slack enforces the limits (429 + Retry-After); the tests count calls per method, 429s
and every version of every message a user could see, never times.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_harness import Running, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack, SlackMessage

ANSWER = " ".join(f"word{i}" for i in range(60))


def _thread(slack: FakeSlack, event: dict[str, Any]) -> list[str]:
    return [m.text for m in slack.thread_replies(event["channel"], event["ts"])]


def _every_version(slack: FakeSlack, event: dict[str, Any]) -> list[str]:
    """Every text a message of this reply ever showed, deleted messages included."""
    mine: list[SlackMessage] = [
        m
        for m in [*slack.messages.values(), *slack.deleted]
        if m.channel == event["channel"] and m.thread_ts == event["ts"] and m.bot_id == slack.bot_id
    ]
    return [text for m in mine for text in m.history]


async def _ask_at_once(bot: Running, slack: FakeSlack, channels: list[str]) -> list[dict[str, Any]]:
    """One question in each channel at once, each answered ANSWER; waits until every thread
    shows only ANSWER (a replaced placeholder deleted) and every turn is stored."""
    for _ in channels:
        bot.bot.standin.script_reply(ANSWER)
    await slack.wait_for_connections(1)
    events = [slack.mention_event(f"question in {c}", channel=c) for c in channels]
    await asyncio.gather(*(slack.push_event(e) for e in events))
    for event in events:
        await wait_answered(slack, event, timeout=30, until=lambda t: t == ANSWER)
    await wait_idle(bot.bot)
    await slack.wait_for(lambda: all(_thread(slack, e) == [ANSWER] for e in events), timeout=10)
    return events


def _in(channel: str, method: str, slack: FakeSlack) -> int:
    return sum(1 for c in slack.calls_of(method) if c.args.get("channel") == channel)


async def test_the_model_starts_before_the_placeholder_exists_and_edits_wait_for_it(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    slack.delay("chat.postMessage", 3.0)  # a slow placeholder: the fake records it once answered
    async with start_bot() as bot:
        bot.bot.standin.script_reply("answered while the placeholder was on its way")
        await slack.wait_for_connections(1)
        event = slack.mention_event("hello")
        await slack.push_event(event)
        async with asyncio.timeout(10):
            while not bot.bot.standin.requests:  # noqa: ASYNC110 - polling the stand-in
                await asyncio.sleep(0.01)
        # The model was asked while the placeholder post was still unanswered.
        assert slack.calls_of("chat.postMessage") == []
        await wait_answered(slack, event, until=lambda t: t.startswith("answered"))
        await wait_idle(bot.bot)
        methods = [c.method for c in slack.calls if c.method.startswith("chat.")]
        # The placeholder first, every edit after it; one reply, one message.
        assert methods[0] == "chat.postMessage"
        assert methods.count("chat.postMessage") == 1
        assert _thread(slack, event) == ["answered while the placeholder was on its way"]


async def test_final_is_posted_anew_when_the_update_budget_is_exhausted(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """Three replies, a workspace allowed one ``chat.update`` a minute: the first reply's final
    may be that edit; the others are new messages (``chat.postMessage``, per channel), and their
    placeholders are deleted. Nothing over any limit reaches Slack."""
    slack.limit_rate("chat.update", calls=1, per_seconds=60)
    slack.limit_rate("chat.delete", calls=50, per_seconds=60)
    slack.limit_rate("chat.postMessage", calls=4, per_seconds=4, per_channel=True)
    # progress "message": every reply posts a placeholder (the status line is tested in
    # test_slack_progress.py); this is the path for workspaces that cannot show one.
    async with start_bot(
        edits_per_minute=1, edit_burst=1, posts_per_minute=60, post_burst=2, progress="message"
    ) as bot:
        bot.bot.standin.tokens_per_second = 40
        events = await _ask_at_once(bot, slack, [f"C0CH{i}" for i in range(3)])

        assert slack.rate_limited() == []
        # Exactly one message per reply is left, showing the final text.
        assert all(_thread(slack, e) == [ANSWER] for e in events)
        assert len(slack.calls_of("chat.update", ok_only=True)) <= 1
        posted_anew = [e for e in events if _in(e["channel"], "chat.postMessage", slack) >= 2]
        assert len(posted_anew) >= 2
        for event in posted_anew:
            channel = event["channel"]
            # Each extra message replaced the one before it, which was deleted.
            assert _in(channel, "chat.delete", slack) == _in(channel, "chat.postMessage", slack) - 1


async def test_each_reply_shows_partial_text_at_low_load_within_the_limits(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """Four replies streaming at once in four channels, Slack's real limits on (``chat.update``
    50 a minute per workspace, ``chat.postMessage`` about 1/s per channel) and the ``[slack]``
    defaults: every reply shows model text before its final text, and no call earns a 429."""
    slack.limit_rate("chat.update", calls=50, per_seconds=60)
    slack.limit_rate("chat.delete", calls=50, per_seconds=60)
    slack.limit_rate("chat.postMessage", calls=4, per_seconds=4, per_channel=True)
    defaults = {"edits_per_minute": 40, "edit_burst": 3, "posts_per_minute": 55, "post_burst": 3}
    async with start_bot(**defaults) as bot:
        bot.bot.standin.tokens_per_second = 15  # 60 words: about 4 s of streaming
        events = await _ask_at_once(bot, slack, [f"C0LOW{i}" for i in range(4)])

        assert slack.rate_limited() == []
        for event in events:
            partial = [v for v in _every_version(slack, event) if v.startswith("word0") and v != ANSWER]
            assert partial, f"no partial text in {event['channel']}"
            assert _thread(slack, event) == [ANSWER]


async def test_replace_final_off_keeps_one_message_edited(slack: FakeSlack, start_bot: StartBot) -> None:
    """With ``replace_final = false`` the final waits for the (short) edit budget instead."""
    slack.limit_rate("chat.update", calls=2, per_seconds=10)
    async with start_bot(edits_per_minute=6, edit_burst=1, replace_final=False) as bot:
        bot.bot.standin.tokens_per_second = 40
        bot.bot.standin.script_reply(ANSWER)
        await slack.wait_for_connections(1)
        event = slack.mention_event("question")
        await slack.push_event(event)
        await wait_answered(slack, event, timeout=30, until=lambda t: t == ANSWER)
        await wait_idle(bot.bot)
        assert slack.rate_limited() == []
        assert _thread(slack, event) == [ANSWER]
        assert len(slack.calls_of("chat.postMessage")) == 1
        assert slack.calls_of("chat.delete") == []
