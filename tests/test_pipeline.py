"""One pipeline for every event: middleware around commands, handlers and turns; text filters on
every version a user sees and on what is stored."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from botkit_console import ConsoleAdapter
from botkit_console.adapter import ConsoleSettings
from pipeline_plugins import allow_list, redactor

from botkit.plugins import (
    CommandContext,
    NextStep,
    OptionSpec,
    Plugin,
    PluginContext,
    Refusal,
    Request,
    TurnResult,
)
from botkit.testing import RecordingReply, TestBot


def deny_all(seen: list[str]) -> Plugin[Any]:
    plugin: Plugin[Any] = Plugin("deny_all")

    @plugin.middleware
    async def refuse(request: Request, next_step: NextStep, ctx: PluginContext[Any]) -> TurnResult:
        seen.append(request.kind)
        raise Refusal("⚠️ This bot is closed today.")

    return plugin


def echo_plugin(ran: list[str]) -> Plugin[Any]:
    plugin: Plugin[Any] = Plugin("echo")

    @plugin.command("echo", "Say it back", options=[OptionSpec("text", "What to say")])
    async def echo(ctx: CommandContext[Any]) -> None:
        ran.append("command")
        await ctx.respond(ctx.text)

    @plugin.on_message(r"^ping\b")
    async def ping(ctx: CommandContext[Any]) -> bool:
        ran.append("handler")
        await ctx.respond("pong")
        return True

    return plugin


async def test_deny_all_middleware_blocks_commands_handlers_admin_commands_and_turns(tmp_path: Path) -> None:
    seen: list[str] = []
    ran: list[str] = []
    async with TestBot(tmp_path, plugins=[echo_plugin(ran), deny_all(seen)]) as bot:
        replies = [
            await bot.ask(
                "hi", command="echo", args={"text": "hi"}, reply=RecordingReply(private_notices=True)
            ),
            await bot.ask("ping", reply=RecordingReply(private_notices=True)),
            await bot.ask(
                "", command="persona list", roles=["admin"], reply=RecordingReply(private_notices=True)
            ),
            await bot.ask(
                "2+2", command="math", args={"question": "2+2"}, reply=RecordingReply(private_notices=True)
            ),
            await bot.ask("What is 2+2?", reply=RecordingReply(private_notices=True)),
        ]
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        stored = await bot.store.messages(conversation)
        assert bot.standin.requests == []
    assert ran == []  # neither the plugin command nor the handler ran
    assert seen == ["command", "handler", "command", "command", "turn"]
    for reply in replies:
        assert reply.notices == ["⚠️ This bot is closed today."]  # to the asker alone
        assert reply.messages == []  # nothing in the channel, not even a placeholder
    assert stored == []


async def test_allow_list_lets_exactly_its_users_through_on_the_console(tmp_path: Path) -> None:
    async with TestBot(tmp_path, plugins=[allow_list({"alice"})]) as bot:
        outputs = {}
        for user in ("alice", "mallory"):
            out = io.StringIO()
            settings = ConsoleSettings(user=user, thread=user, interactive=False)
            adapter = ConsoleAdapter(
                bot.bot, settings, stdin=io.StringIO("What is 6*7?\n:math 2+3\n"), stdout=out
            )
            await adapter.run()
            outputs[user] = out.getvalue()
        assert len(bot.standin.requests) == 2  # alice's question and her :math
    # Math answers are shown with their LaTeX as Unicode and the boxed value as the final answer.
    assert "**Final answer:** `42`" in outputs["alice"] and "**Final answer:** `5`" in outputs["alice"]
    assert outputs["mallory"].count("Ask #help-desk for access.") == 2
    assert "boxed" not in outputs["mallory"]


async def test_middleware_rewrites_the_question_picks_the_persona_and_observes_results(
    tmp_path: Path,
) -> None:
    observed: list[tuple[str, str | None, str, bool]] = []
    plugin: Plugin[Any] = Plugin("shaper")

    @plugin.middleware
    async def shape(request: Request, next_step: NextStep, ctx: PluginContext[Any]) -> TurnResult:
        if request.kind == "turn" and request.question.startswith("calc:"):
            request.question = request.question.removeprefix("calc:").strip()
            math = ctx.personas.get("math")
            assert math is not None
            request.persona = math
        result = await next_step(request)
        observed.append((request.kind, request.command, result.status, request.parent is not None))
        return result

    async with TestBot(tmp_path, plugins=[plugin]) as bot:
        reply = await bot.ask("calc: What is 9*9?")
        sent = bot.standin.requests[-1]["messages"][-1]["content"]
        await bot.ask("2+2", command="math", args={"question": "2+2"})
    assert "**Final answer:** `81`" in reply.text
    assert "calc:" not in sent and "What is 9*9?" in sent
    assert "\\boxed{}" in sent  # the math persona's directive: the middleware picked it
    assert observed == [
        ("turn", None, "complete", False),
        ("turn", "math", "complete", True),  # /math's turn passes the chain again, as a child
        ("command", "math", "complete", False),  # and the command sees its turn's result
    ]


async def test_middleware_vetoing_a_persona_refuses_privately_before_any_placeholder(tmp_path: Path) -> None:
    plugin: Plugin[Any] = Plugin("no_math")

    @plugin.middleware(kinds={"turn"})
    async def veto(request: Request, next_step: NextStep, ctx: PluginContext[Any]) -> TurnResult:
        assert request.persona is not None
        if request.persona.name == "math":
            raise Refusal("⚠️ Math help is closed during exams.")
        return await next_step(request)

    async with TestBot(tmp_path, plugins=[plugin]) as bot:
        vetoed = await bot.ask(
            "2+2", command="math", args={"question": "2+2"}, reply=RecordingReply(private_notices=True)
        )
        allowed = await bot.ask("What is 2+2?")
        assert len(bot.standin.requests) == 1
        assert vetoed.notices == ["⚠️ Math help is closed during exams."] and vetoed.messages == []
    assert "**Final answer:** `4`" in allowed.text


async def test_filter_redacts_every_version_and_what_is_stored(tmp_path: Path) -> None:
    answer = "Write to carol@example.org for the form. " + " ".join(f"word{i}" for i in range(40))
    async with TestBot(tmp_path, plugins=[redactor()], settings={"stream": {"edit_interval": 0.0}}) as bot:
        bot.standin.tokens_per_second = 300
        bot.standin.script_reply(
            answer, reasoning="The user is dave@example.com, tell them carol@example.org."
        )
        reply = await bot.ask("My address is dave@example.com; who handles forms?")
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        stored = await bot.store.messages(conversation)
    versions = [call.text for call in reply.calls if call.text]
    assert len(versions) >= 3  # placeholder, partial edits, final
    assert all("@example" not in version for version in versions), versions
    assert "[email] for the form" in reply.text
    question, assistant = stored
    assert question.content == "My address is [email]; who handles forms?"
    assert "@example" not in assistant.content and "[email]" in assistant.content
    assert assistant.reasoning is not None and "@example" not in assistant.reasoning


async def test_a_failing_filter_withholds_the_text_rather_than_leak_it(tmp_path: Path) -> None:
    plugin: Plugin[Any] = Plugin("broken_filter")

    @plugin.text_filter()
    def broken(text: str) -> str:
        if "secret" in text:
            raise RuntimeError("filter bug")
        return text

    async with TestBot(tmp_path, plugins=[plugin]) as bot:
        bot.standin.script_reply("the secret is 42")
        reply = await bot.ask("tell me")
    assert all("secret" not in call.text for call in reply.calls)
    assert "withheld" in reply.text


async def test_respond_with_empty_text_is_refused_not_left_thinking(tmp_path: Path) -> None:
    plugin: Plugin[Any] = Plugin("blank")

    @plugin.command("blank", "Answer nothing")
    async def blank(ctx: CommandContext[Any]) -> None:
        await ctx.respond("   ")

    async with TestBot(tmp_path, plugins=[plugin]) as bot:
        reply = await bot.ask("", command="blank")
    assert "Thinking" not in reply.text
    assert "Something went wrong inside botkit (ValueError)" in reply.text
