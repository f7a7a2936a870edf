"""Slack's rate limits: 429 + Retry-After honoured, one edit budget shared by a workspace."""

from __future__ import annotations

import asyncio

from botkit_slack.mrkdwn import to_mrkdwn
from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack

LONG = " ".join(f"token{i}" for i in range(80))


async def test_429_on_chat_update_is_waited_out_and_final_text_lands(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        bot.bot.standin.tokens_per_second = 300
        bot.bot.standin.script_reply(LONG)
        slack.fail_with_429("chat.update", count=1, retry_after=1)
        await slack.wait_for_connections(1)
        event = slack.mention_event("long answer please")
        await slack.push_event(event)
        await slack.wait_for(
            lambda: (
                [m.text for m in slack.thread_replies(event["channel"], event["ts"])] == [to_mrkdwn(LONG)]
            ),
            timeout=20,
        )
        await wait_idle(bot.bot)
        (limited,) = slack.rate_limited("chat.update")
        later = [c for c in slack.calls_of("chat.update", ok_only=True) if c.at > limited.at]
        assert later, "no edit after the 429"
        # The adapter (through the shared budget) waited Retry-After before editing again.
        assert later[0].at - limited.at >= 0.9


async def test_429_on_the_placeholder_is_retried(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot() as bot:
        bot.bot.standin.script_reply("still answered")
        slack.fail_with_429("chat.postMessage", count=1, retry_after=1)
        await slack.wait_for_connections(1)
        event = slack.mention_event("hello")
        await slack.push_event(event)
        await slack.wait_for(
            lambda: (
                [m.text for m in slack.thread_replies(event["channel"], event["ts"])] == ["still answered"]
            ),
            timeout=10,
        )
        await wait_idle(bot.bot)
        assert len(slack.rate_limited("chat.postMessage")) == 1


async def test_concurrent_replies_share_one_edit_budget(slack: FakeSlack, start_bot: StartBot) -> None:
    per_minute, burst = 600, 4  # 10 edits/s for the whole workspace
    window = 1.0
    allowed = burst + int(per_minute / 60 * window) + 1  # +1: arrival jitter at the server
    slack.limit_rate("chat.update", calls=allowed, per_seconds=window)
    async with start_bot(edits_per_minute=per_minute, edit_burst=burst) as bot:
        bot.bot.standin.tokens_per_second = 200
        await slack.wait_for_connections(1)
        events = [slack.mention_event(f"question number {i}", channel=f"C0CH{i % 4}") for i in range(20)]
        await asyncio.gather(*(slack.push_event(e) for e in events))
        for event in events:
            text = await wait_answered(slack, event, timeout=40, until=STANDIN_DONE)
            assert f"question number {event['text'].split()[-1]}" in text
        await wait_idle(bot.bot)
        # Every reply got its final text, and Slack never had to say 429: the budget held.
        assert slack.rate_limited("chat.update") == []
        updates = sorted(c.at for c in slack.calls_of("chat.update", ok_only=True))
        assert len(updates) >= len(events)
        # Count (not time) the edits in every rolling window: never above rate x window + burst.
        for i, start in enumerate(updates):
            in_window = sum(1 for t in updates[i:] if t - start < window)
            assert in_window <= allowed
        # ... which, scaled to Slack's real window, is within edits_per_minute (+ burst).
        assert len([t for t in updates if t - updates[0] < 60]) <= per_minute + burst
