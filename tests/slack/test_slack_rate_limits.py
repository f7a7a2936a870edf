"""Slack's rate limits and server errors: 429 + Retry-After honoured by the one budget a workspace
shares, 5xx retried by the core alone, refusals not retried. Calls are counted at the fake Slack."""

from __future__ import annotations

import asyncio

from botkit_slack.mrkdwn import to_mrkdwn
from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import ApiCall, FakeSlack

LONG = " ".join(f"token{i}" for i in range(80))


async def test_429_on_chat_update_is_waited_out_and_final_text_lands(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    # replace_final off: the final is an edit, whatever the budget (tests/slack/test_slack_budgets.py
    # has the final posted anew while chat.update is paused).
    async with start_bot(replace_final=False) as bot:
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
        # The core retried it once; the adapter made each call once.
        assert [c.status for c in slack.calls_of("chat.postMessage")] == [429, 200]


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


# No streaming edits: the placeholder, then the final edit is a reply's only chat.update.
FINAL_ONLY = {"stream": {"edit_interval": 600, "first_text_at_once": False}}  # the final edit alone


def _in(channel: str, calls: list[ApiCall]) -> list[ApiCall]:
    return [c for c in calls if c.args.get("channel") == channel]


async def test_429_on_a_placeholder_pauses_that_channels_posts_not_the_workspaces_edits(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """Slack limits each method on its own: a ``chat.postMessage`` 429 in one channel says nothing
    about ``chat.update`` in the workspace, so the reply streaming next door keeps editing."""
    streaming = " ".join(f"word{i}" for i in range(200))
    async with start_bot(core={"stream": {"edit_interval": 0.05}}) as bot:
        standin = bot.bot.standin
        standin.tokens_per_second = 50  # the first reply streams for seconds, editing all along
        standin.script_reply(streaming)
        standin.script_reply("the second answer")
        await slack.wait_for_connections(1)
        first = slack.mention_event("a long answer please", channel="C0ONE")
        await slack.push_event(first)
        await slack.wait_for(lambda: len(_in("C0ONE", slack.calls_of("chat.update"))) >= 3)
        slack.fail_with_429("chat.postMessage", retry_after=1)
        second = slack.mention_event("a short one", channel="C0TWO")
        await slack.push_event(second)
        await wait_answered(slack, second, until=lambda t: t == "the second answer")
        await wait_answered(slack, first, timeout=20, until=lambda t: t == streaming)
        await wait_idle(bot.bot)

        posts = _in("C0TWO", slack.calls_of("chat.postMessage"))
        assert [c.status for c in posts] == [429, 200]  # retried once, by the core alone
        limited, landed = slack.calls.index(posts[0]), slack.calls.index(posts[1])
        between = [c for c in slack.calls[limited + 1 : landed] if c.method == "chat.update"]
        # The post budget of C0TWO waited out its Retry-After; the workspace's edits went on.
        assert _in("C0ONE", between)
        assert len(_in("C0ONE", slack.calls_of("chat.postMessage"))) == 1
        assert slack.rate_limited("chat.update") == []


async def test_500_on_the_final_edit_is_retried_until_it_lands(slack: FakeSlack, start_bot: StartBot) -> None:
    answer = "The final answer lands after a server error."
    async with start_bot(core=FINAL_ONLY) as bot:
        bot.bot.standin.script_reply(answer)
        slack.fail_with_status("chat.update", 500)
        await slack.wait_for_connections(1)
        event = slack.mention_event("hello")
        await slack.push_event(event)
        assert await wait_answered(slack, event, until=lambda t: t == answer) == answer
        await wait_idle(bot.bot)
        assert [c.status for c in slack.calls_of("chat.update")] == [500, 200]
        assert all(c.args["text"] == answer for c in slack.calls_of("chat.update"))
        assert len(slack.calls_of("chat.postMessage")) == 1


async def test_a_refused_final_edit_is_not_retried(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot(core=FINAL_ONLY) as bot:
        bot.bot.standin.script_reply("Never shown.")
        slack.fail_with_error("chat.update", "cant_update_message")
        await slack.wait_for_connections(1)
        event = slack.mention_event("hello")
        await slack.push_event(event)
        await slack.wait_for(lambda: slack.calls_of("chat.update"))
        await wait_idle(bot.bot)
        (update,) = slack.calls_of("chat.update")  # a refusal: tried once
        assert update.error == "cant_update_message"
        assert [m.text for m in slack.thread_replies(event["channel"], event["ts"])] == ["_Thinking…_"]


async def test_429_on_a_slash_commands_first_message_is_retried_by_the_core(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        bot.bot.standin.script_reply("Answered anyway.")
        slack.fail_with_429("chat.postMessage", retry_after=0.2)
        await slack.wait_for_connections(1)
        await slack.push_slash_command(slack.slash_command("/ask", "hello"))
        await slack.wait_for(
            lambda: [m.text for m in slack.bot_messages("C0GENERAL")] == ["Answered anyway."]
        )
        await wait_idle(bot.bot)
        assert [c.status for c in slack.calls_of("chat.postMessage")] == [429, 200]
        assert slack.responses == []  # no "please try again" hint: it was retried


async def test_429_on_an_ephemeral_notice_is_retried_and_stays_private(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        slack.fail_with_429("chat.postEphemeral", retry_after=0.2)
        await slack.wait_for_connections(1)
        event = slack.mention_event("!persona list")
        await slack.push_event(event)
        await slack.wait_for(lambda: slack.ephemerals)
        await wait_idle(bot.bot)
        assert [c.status for c in slack.calls_of("chat.postEphemeral")] == [429, 200]
        (notice,) = slack.ephemerals
        assert "admins only" in notice.text
        assert slack.thread_replies(event["channel"], event["ts"]) == []  # nothing public


async def test_a_failed_streaming_edit_is_superseded_not_retried(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    streaming = " ".join(f"word{i}" for i in range(150))
    async with start_bot(core={"stream": {"edit_interval": 0.05}}) as bot:
        bot.bot.standin.tokens_per_second = 100
        bot.bot.standin.script_reply(streaming)
        slack.fail_with_status("chat.update", 502, match=lambda args: "word20 " in str(args.get("text")))
        await slack.wait_for_connections(1)
        event = slack.mention_event("stream please")
        await slack.push_event(event)
        await wait_answered(slack, event, timeout=20, until=lambda t: t == streaming)
        await wait_idle(bot.bot)
        updates = slack.calls_of("chat.update")
        (failed,) = [i for i, c in enumerate(updates) if c.status == 502]
        # The next edit carried a newer version; the failed one was never sent again.
        assert updates[failed + 1].args["text"] != updates[failed].args["text"]
        assert sum(c.args["text"] == updates[failed].args["text"] for c in updates) == 1
