"""Fault drills on Slack: the Socket Mode WebSocket dropped mid-reply, 429 on every third call
for a (virtual) minute, and one event delivered five times across two processes.

Each asserts what the fake Slack shows (every version of every message, ``SlackMessage.history``)
and what the database holds: one final reply per accepted message, no duplicate, no row left
``queued``/``streaming``, no complete answer overwritten.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from botkit_slack.mrkdwn import to_mrkdwn
from drills import assert_one_final_reply_each, assert_only_grew
from slack_harness import STANDIN_DONE, Running, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack, SlackMessage

LONG = " ".join(f"word{i}" for i in range(120))


def _only_reply(slack: FakeSlack, event: dict[str, Any]) -> SlackMessage:
    """The one bot message in the event's thread, whose versions only ever grew to the final text."""
    (reply,) = slack.thread_replies(event["channel"], event["ts"])
    assert_only_grew(reply.history, reply.text)
    return reply


async def test_socket_mode_connection_dropped_mid_reply(slack: FakeSlack, start_bot: StartBot) -> None:
    """Slack closes the WebSocket while a reply streams: the reply's edits go over the Web API and
    finish once; slack_sdk opens a new connection, and an event pushed on it is answered once."""
    async with start_bot(core={"stream": {"edit_interval": 0.05}}) as bot:
        standin = bot.bot.standin
        standin.tokens_per_second = 80
        standin.script_reply(LONG)
        standin.script_reply("after the reconnect")
        await slack.wait_for_connections(1)
        opened = slack.connections_opened  # (``check`` opens one too)
        first = slack.mention_event("a long answer please")
        await slack.push_event(first)
        await slack.wait_for(lambda: len(slack.calls_of("chat.update")) >= 2)

        slack.delay("apps.connections.open", 0.3)  # the reconnect takes a while, the reply goes on
        dropped_at = len(slack.calls)
        assert await slack.drop_sockets() == 1
        await slack.wait_for(lambda: slack.connections_opened == opened + 1 and slack.sockets)
        slack.delay("apps.connections.open", 0)
        reopen = slack.calls_of("apps.connections.open")[-1]
        offline = slack.calls[dropped_at : slack.calls.index(reopen)]
        assert [c for c in offline if c.method == "chat.update"], "no edit while the socket was down"
        assert slack.thread_replies(first["channel"], first["ts"])[0].text != to_mrkdwn(LONG)  # mid-reply
        second = slack.mention_event("are you still there?")
        await slack.push_event(second)
        await wait_answered(slack, second, until=lambda t: t == "after the reconnect")
        await wait_answered(slack, first, timeout=20, until=lambda t: t == to_mrkdwn(LONG))
        await wait_idle(bot.bot)

        assert _only_reply(slack, first).text == to_mrkdwn(LONG)
        assert _only_reply(slack, second).text == "after the reconnect"
        assert len(slack.calls_of("chat.postMessage")) == 2
        assert len(standin.requests) == 2
        answers = await assert_one_final_reply_each(bot.bot.database_url, 2)
        assert [a.content for a in answers] == [LONG, "after the reconnect"]


def _paused_windows(slack: FakeSlack, retry_after: float) -> list[tuple[float, float, str, str]]:
    """(start, end, channel, method) of every pause a 429 asked for, as the fake's clock saw it."""
    return [(c.at, c.at + retry_after, str(c.args.get("channel")), c.method) for c in slack.rate_limited()]


async def test_429_on_every_third_call_for_a_minute(slack: FakeSlack, start_bot: StartBot) -> None:
    """Every third ``chat.postMessage``/``chat.update`` is a 429 for a virtual minute: the first
    ``MINUTE`` calls of them (counted, not timed, so the drill takes seconds). Ten replies at
    once, each in its own channel: every final text lands, once."""
    minute, retry_after, replies = 24, 0.3, 10
    slack.limit_every(("chat.postMessage", "chat.update"), nth=3, calls=minute, retry_after=retry_after)
    async with start_bot(core={"stream": {"edit_interval": 0.05}}) as bot:
        bot.bot.standin.tokens_per_second = 200
        await slack.wait_for_connections(1)
        events = [slack.mention_event(f"question number {i}", channel=f"C0CH{i}") for i in range(replies)]
        await asyncio.gather(*(slack.push_event(e) for e in events))
        for event in events:
            await wait_answered(slack, event, timeout=40, until=STANDIN_DONE)
        await wait_idle(bot.bot, timeout=20)

        chat = [c for c in slack.calls if c.method in ("chat.postMessage", "chat.update")]
        assert len(chat) >= minute
        assert len(slack.rate_limited()) == minute // 3
        assert [c.status for c in chat[:minute]] == [200, 200, 429] * (minute // 3)
        # A final posted anew deletes its placeholder in the background, after the turn is stored.
        await slack.wait_for(
            lambda: all(len(slack.thread_replies(e["channel"], e["ts"])) == 1 for e in events), timeout=10
        )
        answers = await assert_one_final_reply_each(bot.bot.database_url, replies)
        stored = {ts: a.content for a in answers for ts in a.platform_message_ids}
        for event in events:
            reply = _only_reply(slack, event)
            assert reply.text == to_mrkdwn(stored[reply.ts])  # the final text, equal to the stored one
            assert f"question number {event['text'].split()[-1]}" in reply.text
        # One placeholder per reply, plus a final posted anew (its placeholder deleted) where the
        # workspace's chat.update budget was paused and the channel's post budget was not.
        deleted = len(slack.calls_of("chat.delete", ok_only=True))
        assert len(slack.calls_of("chat.postMessage", ok_only=True)) == replies + deleted

        # A 429 paused its own method's budget: chat.update's for the workspace, chat.postMessage's
        # for the channel. While a pause lasted, the refused reply sent no call of that method,
        # and in the workspace's chat.update pause every other reply at most the one on its way.
        for start, end, refused, method in _paused_windows(slack, retry_after):
            during = [c for c in chat if start < c.at < end and c.method == method]
            assert not [c for c in during if c.args.get("channel") == refused]
            if method == "chat.update":
                channels = [str(c.args.get("channel")) for c in during]
                assert len(channels) == len(set(channels)), channels


async def _five_deliveries_across_two_processes(slack: FakeSlack, one: Running, two: Running) -> None:
    await slack.wait_for_connections(2)
    event = slack.mention_event("answer me exactly once")
    event_id = "Ev0FIVETIMES"
    envelopes = []
    for attempt in range(5):  # interleaved: connections 0, 1, 0, 1, 0
        envelopes.append(
            await slack.push_event(
                event,
                event_id=event_id,
                connection=attempt % 2,
                retry_attempt=attempt,
                retry_reason="timeout" if attempt else "",
            )
        )
        if attempt == 2:
            await wait_answered(slack, event)  # some while it streams, some after it started
    for envelope in envelopes:
        await slack.wait_for_ack(envelope["envelope_id"])
    await wait_answered(slack, event, until=STANDIN_DONE)
    await wait_idle(one.bot)
    await wait_idle(two.bot)
    sentinel = slack.mention_event("sentinel")  # anything still queued would be done by now
    await slack.push_event(sentinel, connection=1)
    await wait_answered(slack, sentinel, until=STANDIN_DONE)
    await wait_idle(two.bot)

    reply = _only_reply(slack, event)
    assert "answer me exactly once" in reply.text
    assert len(slack.calls_of("chat.postMessage")) == 2  # the reply and the sentinel's
    asked = [r for b in (one, two) for r in b.bot.standin.requests if "exactly once" in str(r["messages"])]
    assert len(asked) == 1
    answers = await assert_one_final_reply_each(one.bot.database_url, 2)
    assert to_mrkdwn(answers[0].content) == reply.text


async def test_one_event_five_times_across_two_processes_on_sqlite(
    slack: FakeSlack, start_bot: StartBot, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with start_bot(database_url=database_url) as one, start_bot(database_url=database_url) as two:
        await _five_deliveries_across_two_processes(slack, one, two)


async def test_one_event_five_times_across_two_processes_on_postgres(
    slack: FakeSlack, start_bot: StartBot, postgres_url: str
) -> None:
    core = {"database": {"auto_migrate": True}}
    async with (
        start_bot(database_url=postgres_url, core=core) as one,
        start_bot(database_url=postgres_url, core=core) as two,
    ):
        await _five_deliveries_across_two_processes(slack, one, two)
