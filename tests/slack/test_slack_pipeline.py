"""The pipeline on Slack: an allow-list middleware and a redaction filter, through slack-bolt and
the fake Slack (every version of every message it recorded)."""

from __future__ import annotations

from pipeline_plugins import ALLOW_LIST_REFUSAL, allow_list, redactor
from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack


async def test_allow_list_answers_its_users_and_refuses_others_privately(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot(plugins=[allow_list({"U0ALICE"})]) as bot:
        await slack.wait_for_connections(1)
        alice = slack.mention_event("What is 6*7?", user="U0ALICE")
        await slack.push_event(alice)
        await wait_answered(slack, alice, until=lambda text: "42" in text)
        mallory = slack.mention_event("What is 6*7?", user="U0MALLORY")
        await slack.push_event(mallory)
        await slack.wait_for(lambda: any(m.user == "U0MALLORY" for m in slack.ephemerals))
        await wait_idle(bot.bot)
        assert len(bot.bot.standin.requests) == 1
    (notice,) = slack.ephemerals
    assert ALLOW_LIST_REFUSAL.removeprefix("⚠️ ") in notice.text
    assert slack.thread_replies(mallory["channel"], mallory["ts"]) == []  # nothing public


async def test_redaction_filter_applies_to_every_version_slack_saw(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    answer = "Write to carol@example.org for the form. " + " ".join(f"word{i}" for i in range(80))
    answer += " Done, from the botkit vLLM stand-in."
    async with start_bot(plugins=[redactor()], core={"stream": {"edit_interval": 0.05}}) as bot:
        bot.bot.standin.tokens_per_second = 400
        bot.bot.standin.script_reply(answer, reasoning="Tell dave@example.com about carol@example.org.")
        await slack.wait_for_connections(1)
        event = slack.mention_event("I am dave@example.com; who handles forms?")
        await slack.push_event(event)
        await wait_answered(slack, event, until=STANDIN_DONE)
        await wait_idle(bot.bot)
        conversation = await bot.bot.store.conversation_id(
            "slack", slack.team_id, event["channel"], event["ts"]
        )
        stored = await bot.bot.store.messages(conversation)
    (reply,) = slack.thread_replies(event["channel"], event["ts"])
    assert reply.edits >= 2  # it streamed: partial versions were shown before the final one
    assert all("@example" not in version for version in reply.history), reply.history
    sent = [str(call.args.get("text", "")) for call in slack.calls_of("chat.update")]
    sent += [str(call.args.get("text", "")) for call in slack.calls_of("chat.postMessage")]
    assert sent and all("@example" not in text for text in sent)
    assert "[email] for the form" in reply.text
    question, assistant = stored
    assert "@example" not in question.content and "@example" not in assistant.content
    assert assistant.reasoning is not None and "@example" not in assistant.reasoning


async def test_allow_list_refuses_a_slash_command_privately_and_leaves_nothing_public(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot(plugins=[allow_list({"U0ALICE"})]) as bot:
        await slack.wait_for_connections(1)
        await slack.push_slash_command(slack.slash_command("/math", "What is 2+3?", user="U0ALICE"))
        await slack.wait_for(
            lambda: any("answer is 5." in m.text for m in slack.bot_messages("C0GENERAL")), 15
        )
        await slack.push_slash_command(slack.slash_command("/math", "What is 2+3?", user="U0MALLORY"))
        await slack.wait_for(lambda: any(m.user == "U0MALLORY" for m in slack.ephemerals), 15)
        await wait_idle(bot.bot)
        assert len(bot.bot.standin.requests) == 1
    public = [m.text for m in slack.bot_messages("C0GENERAL")]
    assert all("Thinking" not in text for text in public), public  # mallory's placeholder is gone
    assert sum("answer is 5." in text for text in public) == 1
