"""Mentions, DMs and thread follow-ups through the real slack-bolt/slack_sdk and the real core."""

from __future__ import annotations

from botkit_slack.mrkdwn import to_mrkdwn
from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack, SlackMessage
from botkit.testing.testbot import TestBot


async def test_mention_gets_a_threaded_streamed_reply(slack: FakeSlack, start_bot: StartBot) -> None:
    answer = "Here is **the answer**: see [the docs](https://example.com/docs) & more.\n\n" + " ".join(
        f"word{i}" for i in range(60)
    )
    async with start_bot() as bot:
        bot.bot.standin.tokens_per_second = 400
        bot.bot.standin.script_reply(answer)
        event = slack.mention_event("explain things please")
        await slack.wait_for_connections(1)
        envelope = await slack.push_event(event)
        await slack.wait_for_ack(envelope["envelope_id"])
        expected = to_mrkdwn(answer)
        await slack.wait_for(
            lambda: [m.text for m in slack.thread_replies(event["channel"], event["ts"])] == [expected]
        )
        (reply,) = slack.thread_replies(event["channel"], event["ts"])
        assert reply.history[0] == "_Thinking…_"  # the placeholder came first
        assert reply.edits >= 2  # streamed: intermediate edits before the final text
        assert "*the answer*" in reply.text
        assert "<https://example.com/docs|the docs>" in reply.text
        assert "&amp; more" in reply.text
        request = bot.bot.standin.requests[-1]
        assert "explain things please" in str(request["messages"][-1]["content"])
        assert "<@" not in str(request["messages"][-1]["content"])  # the mention was stripped


async def test_direct_message_is_answered_and_continues(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot() as bot:
        standin = bot.bot.standin
        standin.script_reply("The capital of France is Paris.")
        standin.script_reply("About 2.1 million people live there.")
        await slack.wait_for_connections(1)
        first = slack.message_event("What is the capital of France?", channel="D0DM", channel_type="im")
        await slack.push_event(first)
        await slack.wait_for(
            lambda: [m.text for m in slack.bot_messages("D0DM")] == ["The capital of France is Paris."]
        )
        (reply,) = slack.bot_messages("D0DM")
        assert reply.thread_ts is None  # a DM is answered in the DM itself, not in a thread
        await wait_idle(bot.bot)
        second = slack.message_event("How many people live there?", channel="D0DM", channel_type="im")
        await slack.push_event(second)
        await slack.wait_for(lambda: len(slack.bot_messages("D0DM")) == 2)
        await slack.wait_for(
            lambda: slack.bot_messages("D0DM")[1].text == "About 2.1 million people live there."
        )
        # The second question was asked with the first exchange as history.
        sent = str(standin.requests[-1]["messages"])
        assert "The capital of France is Paris." in sent


async def test_thread_follow_up_carries_history(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot() as bot:
        standin = bot.bot.standin
        standin.script_reply("Kubernetes schedules containers.")
        standin.script_reply("Pods are its smallest unit.")
        await slack.wait_for_connections(1)
        root = slack.mention_event("what does kubernetes do?")
        await slack.push_event(root)
        channel, thread = root["channel"], root["ts"]
        await slack.wait_for(
            lambda: (
                [m.text for m in slack.thread_replies(channel, thread)]
                == ["Kubernetes schedules containers."]
            )
        )
        await wait_idle(bot.bot)
        # A mention inside the thread arrives twice (app_mention and its message twin): one reply.
        follow = slack.mention_event("and what is a pod?", thread_ts=thread)
        twin = {**follow, "type": "message", "channel_type": "channel"}
        await slack.push_event(follow)
        await slack.push_event(twin)
        await slack.wait_for(lambda: len(slack.thread_replies(channel, thread)) >= 2)
        await slack.wait_for(
            lambda: slack.thread_replies(channel, thread)[-1].text == "Pods are its smallest unit."
        )
        assert "Kubernetes schedules containers." in str(standin.requests[-1]["messages"])
        await _settle(slack, bot.bot)
        assert len(slack.thread_replies(channel, thread)) == 2
        assert len(standin.requests) == 3  # root, follow-up, sentinel


async def test_follow_up_without_mention_only_where_configured(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot(channels_without_mention=["C0OPEN"]) as bot:
        standin = bot.bot.standin
        await slack.wait_for_connections(1)
        for channel in ("C0OPEN", "C0GENERAL"):
            standin.script_reply(f"first answer in {channel}")
            root = slack.mention_event("hello", channel=channel)
            await slack.push_event(root)
            expected = f"first answer in {channel}"
            await wait_answered(slack, root, until=lambda t, e=expected: t == e)
            if channel == "C0OPEN":
                standin.script_reply(f"second answer in {channel}")
            await slack.push_event(slack.message_event("tell me more", channel=channel, thread_ts=root["ts"]))
            if channel == "C0OPEN":  # answered before the next channel's question takes a scripted reply
                await slack.wait_for(
                    lambda: [m.text for m in slack.bot_messages("C0OPEN")][-1:] == ["second answer in C0OPEN"]
                )
        await slack.wait_for(lambda: len(slack.bot_messages("C0OPEN")) == 2)
        assert slack.bot_messages("C0OPEN")[-1].text == "second answer in C0OPEN"
        # A top-level message without a mention is never answered, even in an open channel.
        await slack.push_event(slack.message_event("just chatting", channel="C0OPEN"))
        await _settle(slack, bot.bot)
        assert [m.text for m in slack.bot_messages("C0GENERAL")] == ["first answer in C0GENERAL"]
        assert len(slack.bot_messages("C0OPEN")) == 2


async def test_follow_up_in_a_thread_answered_by_another_process(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """The bot's part in a thread is looked up with conversations.replies when not remembered."""
    root = slack.message_event("<@U0BOTKIT> earlier question", channel="C0OPEN")
    slack.record_user_message(root)
    answer_ts = slack.next_ts()
    slack.messages[("C0OPEN", answer_ts)] = SlackMessage(
        channel="C0OPEN",
        ts=answer_ts,
        text="earlier answer",
        user="U0BOTKIT",
        bot_id="B0BOTKIT",
        thread_ts=root["ts"],
        history=["earlier answer"],
    )
    async with start_bot(channels_without_mention=["C0OPEN"]) as bot:
        bot.bot.standin.script_reply("a follow-up answer")
        await slack.wait_for_connections(1)
        await slack.push_event(slack.message_event("and then?", channel="C0OPEN", thread_ts=root["ts"]))
        await slack.wait_for(
            lambda: slack.thread_replies("C0OPEN", root["ts"])[-1].text == "a follow-up answer"
        )
        assert slack.calls_of("conversations.replies")


async def test_own_bot_and_edited_messages_are_ignored(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot(require_mention=False) as bot:
        standin = bot.bot.standin
        await slack.wait_for_connections(1)
        standin.script_reply("root answer")
        root = slack.mention_event("start a thread")
        await slack.push_event(root)
        channel, thread = root["channel"], root["ts"]
        await slack.wait_for(
            lambda: [m.text for m in slack.thread_replies(channel, thread)] == ["root answer"]
        )
        ignored = [
            slack.message_event(
                "my own words", thread_ts=thread, user=slack.bot_user_id, bot_id=slack.bot_id
            ),
            slack.message_event("another bot", thread_ts=thread, user="U0OTHERBOT", bot_id="B0OTHER"),
            slack.message_event("bot message", thread_ts=thread, subtype="bot_message", bot_id="B0OTHER"),
            slack.message_event(
                "",
                thread_ts=thread,
                subtype="message_changed",
                message={"text": "edited <@U0BOTKIT>", "user": "U0ALICE", "ts": thread},
            ),
            slack.message_event("", thread_ts=thread, subtype="message_deleted", deleted_ts=thread),
            slack.message_event("joined", thread_ts=thread, subtype="channel_join"),
            {**slack.mention_event("mention from a bot", thread_ts=thread), "bot_id": "B0OTHER"},
        ]
        for event in ignored:
            envelope = await slack.push_event(event)
            await slack.wait_for_ack(envelope["envelope_id"])
        await _settle(slack, bot.bot)
        assert [m.text for m in slack.thread_replies(channel, thread)] == ["root answer"]
        assert len(standin.requests) == 2  # root and sentinel


async def _settle(slack: FakeSlack, bot: TestBot) -> None:
    """Push one more event and wait until it is answered, so every earlier event was handled."""
    sentinel = slack.message_event("sentinel", channel="D0SENTINEL", channel_type="im")
    before = len(slack.bot_messages("D0SENTINEL"))
    await slack.push_event(sentinel)
    await slack.wait_for(lambda: len(slack.bot_messages("D0SENTINEL")) > before)
    await wait_answered(slack, sentinel, until=STANDIN_DONE)
    await wait_idle(bot)
