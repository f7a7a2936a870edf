"""The plugin API end to end: commands, matchers, middleware with variables, typed config, hooks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from botkit.adapter import OptionSpec
from botkit.config import ConfigError
from botkit.personas import shipped_personas_dir
from botkit.plugins import CommandContext, NextStep, Plugin, PluginContext, Turn, TurnResult
from botkit.testing import TestBot


class Config(BaseModel):
    terms: dict[str, str] = {}


def make_plugin(events: list[str]) -> Plugin[Config]:
    plugin: Plugin[Config] = Plugin("glossary", config=Config, variables=["glossary"])

    @plugin.command("define", "Explain a term", options=[OptionSpec("term", "The term")])
    async def define(ctx: CommandContext[Config]) -> None:
        term = ctx.args["term"]
        known = (ctx.config or Config()).terms.get(term)
        if known:
            await ctx.respond(f"**{term}**: {known}")
        else:
            await ctx.converse(question=f"What does {term} mean?")

    @plugin.on_message(r"^ping$")
    async def ping(ctx: CommandContext[Config]) -> bool:
        await ctx.respond("pong")
        return True

    @plugin.on_message(lambda message: message.text.startswith("pass"))
    async def passing(ctx: CommandContext[Config]) -> bool:
        events.append("passed on")
        return False

    @plugin.middleware
    async def expand(turn: Turn, next_step: NextStep, ctx: PluginContext[Config]) -> TurnResult:
        for term, meaning in (ctx.config or Config()).terms.items():
            if term in turn.question:
                turn.variables["glossary"] = f"{term} means {meaning}"
        result = await next_step(turn)
        if result.status == "complete":
            result.answer = result.answer.replace("TODO", "to do")
        return result

    @plugin.on_startup
    async def started(ctx: PluginContext[Config]) -> None:
        events.append(f"start {sorted((ctx.config or Config()).terms)}")

    @plugin.on_shutdown
    async def stopped(ctx: PluginContext[Config]) -> None:
        events.append("stop")

    return plugin


SETTINGS = {"plugins": {"settings": {"glossary": {"terms": {"KV": "key-value"}}}}}


async def test_commands_handlers_middleware_and_hooks(tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), personas)
    general = personas / "general.md"
    general.write_text(general.read_text() + "\n{% if glossary %}Glossary: {{ glossary }}{% endif %}\n")
    events: list[str] = []
    settings = {**SETTINGS, "personas": {"dir": str(personas)}}
    async with TestBot(tmp_path, plugins=[make_plugin(events)], settings=settings) as bot:
        known = await bot.ask("", command="define", args={"term": "KV"})
        assert bot.standin.requests == []
        pong = await bot.ask("ping")
        assert bot.standin.requests == []
        await bot.ask("pass this on")
        assert len(bot.standin.requests) == 1
        bot.standin.script_reply("TODO: explain")
        unknown = await bot.ask("", command="define", args={"term": "KV store"})
        prompt = bot.standin.requests[-1]["messages"][-1]["content"]
    assert known.text == "**KV**: key-value"
    assert pong.text == "pong"
    assert "What does KV store mean?" in prompt
    assert "Glossary: KV means key-value" in prompt
    assert unknown.text == "to do: explain"
    assert events == ["start ['KV']", "passed on", "stop"]


async def test_bad_plugin_config_is_a_clear_error(tmp_path: Path) -> None:
    settings = {"plugins": {"settings": {"glossary": {"terms": "not a table"}}}}
    with pytest.raises(ConfigError, match=r"plugins\.settings\.glossary\.terms"):
        async with TestBot(tmp_path, plugins=[make_plugin([])], settings=settings):
            pass


async def test_enabled_but_missing_plugin_is_a_clear_error(tmp_path: Path) -> None:
    settings = {"plugins": {"enabled": ["math", "no_such_plugin"]}}
    with pytest.raises(ConfigError, match=r"no_such_plugin.*not installed"):
        async with TestBot(tmp_path, settings=settings):
            pass
