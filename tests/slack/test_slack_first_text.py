"""The answer's first words reach Slack when the model writes them, not at the next edit tick
(issue 11, goal 2: first visible text within the server's time to first token + one edit
interval + 0.25 s). The edit interval paces the edits after it; with ``first_text_at_once``
off every edit waits for it."""

from __future__ import annotations

from slack_harness import StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack

ANSWER = " ".join(f"word{i}" for i in range(60))
REASONING = " ".join(f"thought{i}" for i in range(20))


def _partial_answers(slack: FakeSlack) -> list[str]:
    """The streaming edits that showed part of the answer (neither a status nor the final)."""
    texts = [str(c.args.get("text", "")) for c in slack.calls_of("chat.update") if c.status == 200]
    return [t for t in texts if t and t != ANSWER and ANSWER.startswith(t.strip())]


async def _ask(slack: FakeSlack, start_bot: StartBot, stream: dict[str, object]) -> list[str]:
    async with start_bot(core={"stream": stream}) as bot:
        bot.bot.standin.tokens_per_second = 40  # 80 tokens: the answer streams for a second or two
        bot.bot.standin.script_reply(ANSWER, reasoning=REASONING)
        await slack.wait_for_connections(1)
        event = slack.mention_event("hello")
        await slack.push_event(event)
        assert await wait_answered(slack, event, until=lambda t: t == ANSWER, timeout=20) == ANSWER
        await wait_idle(bot.bot)
        return _partial_answers(slack)


async def test_the_first_answer_text_is_edited_in_without_waiting_for_the_edit_tick(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    # An edit interval far longer than the answer: before, its first tick came after the final,
    # so the answer appeared only whole; the reasoning had the pump waiting out that interval
    # ("Thinking…") when the first answer text came.
    partial = await _ask(slack, start_bot, {"edit_interval": 600})
    assert len(partial) == 1, "exactly one partial edit: the first text; the interval paces the rest"
    assert len(partial[0].split()) < len(ANSWER.split())
    posts = slack.calls_of("chat.postMessage")
    assert [c.args.get("text") for c in posts] == ["_Thinking…_"]


async def test_with_first_text_at_once_off_every_edit_waits_for_the_interval(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    assert await _ask(slack, start_bot, {"edit_interval": 600, "first_text_at_once": False}) == []
