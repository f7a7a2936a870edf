"""The core's plugin commands on Slack: slash commands, the ``!command`` keyword, notices."""

from __future__ import annotations

from botkit_slack.commands import keyword_command, parse_slash, top_level_names
from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle

from botkit.adapter import CommandSpec, OptionSpec
from botkit.testing.fake_slack import FakeSlack, SlackMessage

SPECS = (
    CommandSpec("math", "Math", (OptionSpec("question", "The problem"),)),
    CommandSpec(
        "ask",
        "Ask",
        (OptionSpec("question", "Q"), OptionSpec("persona", "P", required=False, kind="persona")),
    ),
    CommandSpec("list", "List", group="persona", admin_only=True),
    CommandSpec("show", "Show", (OptionSpec("name", "N", kind="persona"),), group="persona"),
    CommandSpec("status", "Status", group="botkit", admin_only=True),
)
ADMIN = {"bot": {"admin_users": ["U0ADMIN"]}}


def test_parsing_is_the_consoles() -> None:
    assert top_level_names(SPECS) == ["math", "ask", "persona", "botkit"]
    math = parse_slash("/math", " 2+2 ", SPECS)
    assert (math.name, math.args, math.text) == ("math", {"question": "2+2"}, "2+2")
    ask = parse_slash("/ask", "persona=legal Can I  sublet my flat?", SPECS)
    assert ask.name == "ask"
    assert ask.args == {"persona": "legal", "question": "Can I sublet my flat?"}
    assert ask.text == "Can I sublet my flat?"
    assert parse_slash("/persona", "list", SPECS).name == "persona list"
    show = parse_slash("/persona", "show legal", SPECS)
    assert (show.name, show.args) == ("persona show", {"name": "legal"})
    assert parse_slash("/botkit", "status", SPECS).name == "botkit status"
    assert parse_slash("/persona", "", SPECS).name == "persona"  # the core answers "unknown command"
    # The keyword form: only known names, so ordinary text starting with "!" stays a question.
    keyword = keyword_command("!math 3*3", SPECS, "!")
    assert keyword is not None
    assert (keyword.name, keyword.args) == ("math", {"question": "3*3"})
    listing = keyword_command("!persona list", SPECS, "!")
    assert listing is not None
    assert listing.name == "persona list"
    assert keyword_command("!!! it broke", SPECS, "!") is None
    assert keyword_command("!mathematics is fun", SPECS, "!") is None
    assert keyword_command("math 2+2", SPECS, "!") is None
    assert keyword_command("!math 2+2", SPECS, "") is None


def _top_level(slack: FakeSlack, channel: str) -> list[SlackMessage]:
    return [m for m in slack.bot_messages(channel) if m.thread_ts is None]


async def test_slash_command_answers_in_channel_and_its_thread_continues(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        standin = bot.bot.standin
        standin.script_reply("2 + 2 = 4, so the answer is \\boxed{4}.")
        standin.script_reply("Because 3 + 1 = 4 as well.")
        await slack.wait_for_connections(1)
        payload = slack.slash_command("/math", "2+2")
        envelope = await slack.push_slash_command(payload)
        ack = await slack.wait_for_ack(envelope["envelope_id"])
        assert not ack.get("payload")  # acked at once, nothing shown by the ack itself
        await slack.wait_for(lambda: any("Final answer" in m.text for m in _top_level(slack, "C0GENERAL")))
        (reply,) = _top_level(slack, "C0GENERAL")
        assert reply.history[0] == "_Thinking…_"
        assert "`4`" in reply.text
        sent = str(standin.requests[-1]["messages"][-1]["content"])
        assert "2+2" in sent
        assert "step by step" in sent  # the math persona's template
        await wait_idle(bot.bot)
        # A mention in the reply's thread continues the command's conversation.
        follow = slack.mention_event("why?", thread_ts=reply.ts)
        await slack.push_event(follow)
        text = await wait_answered(slack, follow, until=lambda t: t == "Because 3 + 1 = 4 as well.")
        assert text == "Because 3 + 1 = 4 as well."
        assert "boxed{4}" in str(standin.requests[-1]["messages"])  # the first answer is history


async def test_a_long_slash_command_answer_continues_in_its_first_messages_thread(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot(max_chars=400) as bot:
        bot.bot.standin.script_reply("\n".join(f"Step {i}: " + "carry the one " * 4 for i in range(40)))
        await slack.wait_for_connections(1)
        await slack.push_slash_command(slack.slash_command("/ask", "explain long addition"))
        await slack.wait_for(lambda: any("Step 39" in m.text for m in slack.bot_messages("C0GENERAL")))
        await wait_idle(bot.bot)
        (first,) = _top_level(slack, "C0GENERAL")  # one message in the channel...
        rest = [m for m in slack.bot_messages("C0GENERAL") if m.thread_ts == first.ts and m.ts != first.ts]
    assert rest  # ...and the rest of the answer in its thread
    assert "Step 0" in first.text and "Step 39" in rest[-1].text


async def test_ask_with_options_and_a_refused_persona(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot() as bot:
        standin = bot.bot.standin
        standin.script_reply("General answer.")
        await slack.wait_for_connections(1)
        await slack.push_slash_command(slack.slash_command("/ask", "persona=general What is up?"))
        await slack.wait_for(lambda: [m.text for m in _top_level(slack, "C0GENERAL")] == ["General answer."])
        sent = str(standin.requests[-1]["messages"][-1]["content"])
        assert "What is up?" in sent
        assert "persona=" not in sent
        await wait_idle(bot.bot)
        # The legal persona is restricted to the legal role: only the asker sees the refusal,
        # and the channel is left as it was (the command's placeholder is removed).
        await slack.push_slash_command(slack.slash_command("/ask", "persona=legal Can I sublet?"))
        await slack.wait_for(lambda: slack.ephemerals)
        (notice,) = slack.ephemerals
        assert notice.user == "U0ALICE"
        assert notice.channel == "C0GENERAL"
        assert "'legal' persona is not available" in notice.text
        await slack.wait_for(lambda: slack.deleted)
        assert [m.text for m in _top_level(slack, "C0GENERAL")] == ["General answer."]
        assert len(standin.requests) == 1
        (row,) = [r for r in await bot.bot.store.audit_entries() if r.action == "refusal"]
    assert (row.platform, row.channel, row.actor) == ("slack", "C0GENERAL", "U0ALICE")
    assert row.workspace
    assert (row.detail["persona"], row.detail["rule"], row.detail["command"]) == (
        "legal",
        "users/roles",
        "ask",
    )


async def test_admin_commands_answer_the_admin_alone_and_are_audited(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot(core=ADMIN) as bot:
        await slack.wait_for_connections(1)
        await slack.push_slash_command(slack.slash_command("/persona", "list"))
        await slack.wait_for(lambda: slack.ephemerals)
        assert "'persona list' is for admins only" in slack.ephemerals[-1].text
        await slack.push_slash_command(slack.slash_command("/persona", "list", user="U0ADMIN"))
        await slack.wait_for(lambda: len(slack.ephemerals) == 2)
        listing = slack.ephemerals[-1]
        assert listing.user == "U0ADMIN"
        assert "*Personas*" in listing.text and "general" in listing.text
        await slack.push_slash_command(slack.slash_command("/persona", "show math", user="U0ADMIN"))
        await slack.wait_for(lambda: len(slack.ephemerals) == 3)
        assert "step by step" in slack.ephemerals[-1].text
        await slack.push_slash_command(slack.slash_command("/botkit", "status", user="U0ADMIN"))
        await slack.wait_for(lambda: len(slack.ephemerals) == 4)
        status = slack.ephemerals[-1]
        assert status.user == "U0ADMIN"
        assert "Model backends" in status.text
        await wait_idle(bot.bot)
        assert _top_level(slack, "C0GENERAL") == []  # nothing an admin asked shows in the channel
        rows = [r for r in await bot.bot.store.audit_entries() if r.platform == "slack"]
    assert [(r.action, r.actor, r.detail["command"]) for r in rows] == [
        ("refusal", "U0ALICE", "persona list"),
        ("admin_command", "U0ADMIN", "persona list"),
        ("admin_command", "U0ADMIN", "persona show"),
        ("admin_command", "U0ADMIN", "botkit status"),
    ]
    assert rows[0].detail["rule"] == "admin_only"
    assert rows[2].detail["args"] == {"name": "math"}
    assert {r.channel for r in rows} == {"C0GENERAL"}


async def test_keyword_command_in_a_mention(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot() as bot:
        standin = bot.bot.standin
        standin.script_reply("Nine: \\boxed{9}")
        await slack.wait_for_connections(1)
        event = slack.mention_event("!math 3*3")
        await slack.push_event(event)
        text = await wait_answered(slack, event, until=lambda t: "Final answer" in t)
        assert "`9`" in text
        sent = str(standin.requests[-1]["messages"][-1]["content"])
        assert "3*3" in sent
        assert "!math" not in sent
        assert "step by step" in sent
        # An admin-only keyword command from a non-admin: an ephemeral notice in the thread.
        refused = slack.mention_event("!persona list")
        await slack.push_event(refused)
        await slack.wait_for(lambda: slack.ephemerals)
        (notice,) = slack.ephemerals
        assert notice.thread_ts == refused["ts"]
        assert "admins only" in notice.text
        # Text that merely starts with "!" is an ordinary question.
        plain = slack.mention_event("!!! is this thing on?")
        await slack.push_event(plain)
        await wait_answered(slack, plain, until=STANDIN_DONE)
        assert "!!! is this thing on?" in str(standin.requests[-1]["messages"][-1]["content"])
        await wait_idle(bot.bot)
        assert slack.thread_replies(refused["channel"], refused["ts"]) == []


async def test_notice_falls_back_to_a_reply_when_slack_refuses_the_ephemeral(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    slack.not_in_channel.add(("U0ALICE", "C0GENERAL"))
    async with start_bot() as bot:
        await slack.wait_for_connections(1)
        event = slack.mention_event("!persona list")
        await slack.push_event(event)
        text = await wait_answered(slack, event, until=lambda t: "admins only" in t)
        assert "'persona list' is for admins only" in text
        assert slack.calls_of("chat.postEphemeral")
        assert slack.ephemerals == []
        await wait_idle(bot.bot)


async def test_command_where_the_bot_cannot_post_gets_a_hint(slack: FakeSlack, start_bot: StartBot) -> None:
    slack.bot_not_in.add("C0PRIVATE")
    async with start_bot() as bot:
        await slack.wait_for_connections(1)
        await slack.push_slash_command(slack.slash_command("/math", "1+1", channel="C0PRIVATE"))
        await slack.wait_for(lambda: slack.responses)
        (response,) = slack.responses
        assert response["response_type"] == "ephemeral"
        assert "/invite @botkit" in response["text"]
        assert bot.bot.standin.requests == []


async def test_a_command_delivered_twice_is_answered_once(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot() as bot:
        bot.bot.standin.script_reply("Once.")
        await slack.wait_for_connections(1)
        payload = slack.slash_command("/ask", "say it once")
        await slack.push_slash_command(payload)
        await slack.wait_for(lambda: [m.text for m in _top_level(slack, "C0GENERAL")] == ["Once."])
        await slack.push_slash_command(payload)  # same trigger_id
        await slack.wait_for(lambda: slack.deleted)
        await wait_idle(bot.bot)
        assert [m.text for m in _top_level(slack, "C0GENERAL")] == ["Once."]
        assert len(bot.bot.standin.requests) == 1
