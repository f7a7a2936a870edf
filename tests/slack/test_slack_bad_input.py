"""The bad-input corpus through slack-bolt and the fake Slack: every question ends in exactly one
reply or one private notice, and no message botkit sends can ping anyone."""

from __future__ import annotations

from bad_input_corpus import INJECTED_ANSWER, QUESTIONS, SLACK_PINGS
from slack_harness import STANDIN_DONE, StartBot, wait_idle

from botkit.testing.fake_slack import FakeSlack


def _sent_texts(slack: FakeSlack) -> list[str]:
    texts: list[str] = []
    for method in (
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "chat.startStream",
        "chat.appendStream",
    ):
        for call in slack.calls_of(method):
            texts.extend(str(call.args.get(key) or "") for key in ("text", "markdown_text"))
    return texts


async def test_every_corpus_question_gets_one_reply_or_one_notice(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        await slack.wait_for_connections(1)
        events = {}
        for name, text in QUESTIONS.items():
            event = slack.mention_event(text)
            events[name] = event
            await slack.push_event(event)

        def settled() -> bool:
            answered = sum(1 for e in events.values() if slack.thread_replies(e["channel"], e["ts"]))
            return answered + len(slack.ephemerals) >= len(events)

        await slack.wait_for(settled, 30)
        await wait_idle(bot.bot, 30)
        unfinished = await bot.bot.store.unfinished_turns()
    assert unfinished == []
    for name, event in events.items():
        replies = slack.thread_replies(event["channel"], event["ts"])
        assert len(replies) <= 1, name
        for reply in replies:
            assert "Something went wrong" not in reply.text, (name, reply.text)
    assert len(slack.ephemerals) == 2  # the whitespace question and the 40,000 characters: private
    hint, too_long = sorted(n.text for n in slack.ephemerals)
    assert hint == "Hi! Ask me a question and I will answer here."
    assert "characters long; the limit is 8,000" in too_long
    request_texts = [str(r["messages"][-1]["content"]) for r in bot.bot.standin.requests]
    assert any("{{ 7*7 }}" in t for t in request_texts)  # template syntax reaches the model as text
    assert all(ping not in text for text in _sent_texts(slack) for ping in SLACK_PINGS)


async def test_a_model_answer_full_of_pings_pings_nobody(slack: FakeSlack, start_bot: StartBot) -> None:
    for streaming in ("edits", "native"):
        async with start_bot(streaming=streaming) as bot:
            bot.bot.standin.script_reply(INJECTED_ANSWER)
            await slack.wait_for_connections(1)
            event = slack.mention_event("say something")
            await slack.push_event(event)
            await slack.wait_for(
                lambda e=event: (
                    any(STANDIN_DONE(r.text) for r in slack.thread_replies(e["channel"], e["ts"]))
                    or any(
                        "stand-in" in c.args.get("markdown_text", "")
                        for c in slack.calls_of("chat.appendStream")
                    )
                ),
                15,
            )
            await wait_idle(bot.bot)
    texts = _sent_texts(slack)
    assert any("everyone" in t for t in texts)  # the answer was shown...
    assert all(ping not in text for text in texts for ping in SLACK_PINGS), texts  # ...defused
