"""Exactly one reply per Slack event: redeliveries and two bot processes sharing one database."""

from __future__ import annotations

from pathlib import Path

from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack


async def test_redelivered_event_gets_one_reply(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot() as bot:
        bot.bot.standin.tokens_per_second = 500
        await slack.wait_for_connections(1)
        event = slack.mention_event("answer me once")
        first = await slack.push_event(event, event_id="Ev0REDELIVER")
        # Slack retries when it thinks the ack was late: same event_id, retry_attempt 1.
        retry = await slack.push_event(
            event, event_id="Ev0REDELIVER", retry_attempt=1, retry_reason="timeout"
        )
        assert (await slack.wait_for_ack(first["envelope_id"]))["envelope_id"] == first["envelope_id"]
        await slack.wait_for_ack(retry["envelope_id"])  # the retry is acknowledged too
        await wait_answered(slack, event, until=STANDIN_DONE)
        await wait_idle(bot.bot)
        # and once more, after the answer is complete
        late = await slack.push_event(event, event_id="Ev0REDELIVER", retry_attempt=2, retry_reason="timeout")
        await slack.wait_for_ack(late["envelope_id"])
        sentinel = slack.mention_event("sentinel")
        await slack.push_event(sentinel)
        await wait_answered(slack, sentinel, until=STANDIN_DONE)
        await wait_idle(bot.bot)
        assert len(slack.thread_replies(event["channel"], event["ts"])) == 1
        asked = [r for r in bot.bot.standin.requests if "answer me once" in str(r["messages"])]
        assert len(asked) == 1


async def test_two_processes_sharing_a_database_reply_once(
    slack: FakeSlack, start_bot: StartBot, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with start_bot(database_url=database_url) as one, start_bot(database_url=database_url) as two:
        await slack.wait_for_connections(2)
        events = [slack.mention_event(f"question {i}") for i in range(5)]
        for event in events:
            # Slack hands the same event to both connections (e.g. during a reconnect).
            await slack.push_event(event, broadcast=True)
        for event in events:
            await wait_answered(slack, event, until=STANDIN_DONE)
        await wait_idle(one.bot)
        await wait_idle(two.bot)
        for event in events:
            (reply,) = slack.thread_replies(event["channel"], event["ts"])
            assert f"question {event['text'][-1]}" in reply.text
        requests = len(one.bot.standin.requests) + len(two.bot.standin.requests)
        assert requests == len(events)
        assert len(slack.calls_of("chat.postMessage")) == len(events)
