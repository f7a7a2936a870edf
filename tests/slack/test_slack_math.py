"""Math on Slack: the formula PNG uploaded into the reply's thread (the external-upload API, as
slack_sdk's files_upload_v2 does it), the Unicode text, and /math in a bound channel."""

from __future__ import annotations

import io

from slack_harness import StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ANSWER = "We solve $$x^2 - 5x + 6 = 0$$ and get $x = \\frac{5 \\pm 1}{2}$, so $\\boxed{2, 3}$."


async def test_a_math_mention_gets_unicode_text_and_a_png_in_its_thread(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        bot.bot.standin.script_reply(ANSWER)
        await slack.wait_for_connections(1)
        event = slack.mention_event("Solve x^2 - 5x + 6 = 0")
        await slack.push_event(event)
        text = await wait_answered(slack, event, until=lambda t: "Final answer" in t)
        await slack.wait_for(lambda: slack.shared_files(event["channel"], event["ts"]), 10)
        prompt = bot.bot.standin.requests[-1]["messages"][-1]["content"]

    assert "x = (5 ± 1)/2" in text and "x² - 5x + 6 = 0" in text and "\\frac" not in text
    assert "*Final answer:* `2, 3`" in text  # mrkdwn bold
    assert "Please reason step by step" in prompt  # asked by @mention, routed as math
    (upload,) = slack.shared_files(event["channel"], event["ts"])
    assert upload.filename == "formulas.png" and upload.data is not None
    assert upload.data.startswith(PNG_SIGNATURE) and len(upload.data) == upload.length
    assert upload.alt_txt == "Formulas: x² - 5x + 6 = 0; Answer: 2, 3"
    from matplotlib.image import imread

    assert imread(io.BytesIO(upload.data), format="png").shape[0] > 40
    methods = [c.method for c in slack.calls]
    assert methods.index("files.getUploadURLExternal") > max(
        i for i, m in enumerate(methods) if m == "chat.update"
    )  # the final text landed first
    assert methods.count("files.completeUploadExternal") == 1


async def test_an_upload_slack_refuses_leaves_the_answer_as_it_is(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    slack.scopes.discard("files:write")  # an install made before botkit asked for files:write
    async with start_bot() as bot:
        bot.bot.standin.script_reply(ANSWER)
        await slack.wait_for_connections(1)
        event = slack.mention_event("Solve x^2 - 5x + 6 = 0")
        await slack.push_event(event)
        text = await wait_answered(slack, event, until=lambda t: "Final answer" in t)
        await slack.wait_for(lambda: any(c.method == "files.getUploadURLExternal" for c in slack.calls), 10)
        await wait_idle(bot.bot)
        unfinished = await bot.bot.store.unfinished_turns()
    assert slack.files == {} and "⚠️" not in text and "`2, 3`" in text
    errors = [c.error for c in slack.calls if c.method == "files.getUploadURLExternal"]
    assert errors == ["missing_scope"]
    assert unfinished == []  # stored as complete: the refused upload did not make it an error


async def test_slash_math_in_a_channel_bound_to_another_persona(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    bindings = {
        "slack:C0GENERAL": "general",
        "slack:C0LOCKED": {"persona": "general", "allow_commands": False},
    }
    async with start_bot(core={"personas": {"bindings": bindings}}) as bot:
        await slack.wait_for_connections(1)
        await slack.push_slash_command(slack.slash_command("/math", "What is 17*23?"))
        await slack.wait_for(
            lambda: any("Final answer" in m.text for m in slack.bot_messages("C0GENERAL")), 15
        )
        math_prompt = bot.bot.standin.requests[-1]["messages"][-1]["content"]
        locked = slack.slash_command("/math", "What is 17*23?", channel="C0LOCKED")
        await slack.push_slash_command(locked)
        await slack.wait_for(lambda: any("/math" in e.text for e in slack.ephemerals), 15)
    assert "You are a helpful" not in math_prompt  # the math persona's template, not general's
    assert "step by step" in math_prompt
    (notice,) = [e for e in slack.ephemerals if e.channel == "C0LOCKED"]
    assert "'general'" in notice.text and "not available here" in notice.text
    assert slack.bot_messages("C0LOCKED") == [] and len(bot.bot.standin.requests) == 1
