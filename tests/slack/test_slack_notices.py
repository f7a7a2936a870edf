"""A persona's notices on Slack, through slack-bolt and the fake Slack (every version of the
reply it recorded): the before-notice on the placeholder and every partial edit, the after-notice
on the final text, and the stored answer."""

from __future__ import annotations

from pathlib import Path

from notice_personas import AFTER, BEFORE, write_noticed
from slack_harness import StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack


async def test_a_bound_channel_shows_both_notices_in_every_version_and_stores_the_after_one(
    slack: FakeSlack, start_bot: StartBot, tmp_path: Path
) -> None:
    answer = "Rest and drink fluids. " + " ".join(f"word{i}" for i in range(80))
    personas = {"dir": str(write_noticed(tmp_path / "personas")), "bindings": {"slack:C0CLINIC": "noticed"}}
    async with start_bot(core={"personas": personas, "stream": {"edit_interval": 0.05}}) as bot:
        bot.bot.standin.tokens_per_second = 400
        bot.bot.standin.script_reply(answer, reasoning="Thinking it over. " * 10)
        await slack.wait_for_connections(1)
        event = slack.mention_event("I have a cold", channel="C0CLINIC")
        await slack.push_event(event)
        await wait_answered(slack, event, until=lambda text: text.endswith(AFTER))
        await wait_idle(bot.bot)
        bot.bot.standin.script_reply("Plain answer.")
        elsewhere = slack.mention_event("And here?", channel="C0GENERAL")  # not bound: no notice
        await slack.push_event(elsewhere)
        await wait_answered(slack, elsewhere, until=lambda text: text == "Plain answer.")
        await wait_idle(bot.bot)
        conversation = await bot.bot.store.conversation_id("slack", slack.team_id, "C0CLINIC", event["ts"])
        stored = await bot.bot.store.messages(conversation)
    (reply,) = slack.thread_replies("C0CLINIC", event["ts"])
    *partials, final = reply.history
    assert partials[0] == f"{BEFORE}\n\n_Thinking…_"
    assert any("word" in version for version in partials), "the answer streamed"
    assert all(version.startswith(f"{BEFORE}\n\n") for version in partials), partials
    assert final == f"{answer}\n\n{AFTER}"
    assert reply.text == final
    _question, assistant = stored
    assert assistant.content == f"{answer}\n\n{AFTER}"
    (plain,) = slack.thread_replies("C0GENERAL", elsewhere["ts"])
    assert all(BEFORE not in version for version in plain.history)
