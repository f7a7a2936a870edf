"""An example botkit plugin: house rules for a channel.

Everything a plugin gets arrives through the context objects it is called with (the command
context, the middleware's plugin context); there are no module-level globals beyond the plugin
definition itself, so one installed plugin can serve several bots in one process.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from botkit.plugins import CommandContext, NextStep, Plugin, PluginContext, Refusal, Request, TurnResult

log = logging.getLogger("botkit_house_rules")


class HouseRules(BaseModel):
    """``[plugins.settings.house_rules]``."""

    model_config = ConfigDict(extra="forbid")

    blocked_words: list[str] = Field(default_factory=lambda: ["password"])
    footer: str = "_(answered by botkit; check important facts)_"


plugin: Plugin[HouseRules] = Plugin(
    "house_rules", description="House rules: blocked words and a footer.", config=HouseRules
)


@plugin.command("rules", "Show this channel's house rules")
async def rules(ctx: CommandContext[HouseRules]) -> None:
    config = ctx.config
    words = ", ".join(f"`{w}`" for w in config.blocked_words) or "none"
    await ctx.respond(
        f"**House rules**\n- Questions containing these words are refused: {words}\n- Answers end with: {config.footer}"
    )


@plugin.middleware
async def enforce(request: Request, next_step: NextStep, ctx: PluginContext[HouseRules]) -> TurnResult:
    """Every event (a command's text too) is checked; only a model's answer gets the footer."""
    lowered = request.question.lower()
    for word in ctx.config.blocked_words:
        if word.lower() in lowered:
            raise Refusal(
                f"⚠️ House rules: please don't post anything containing {word!r} here. Nothing was sent to the model."
            )
    result = await next_step(request)
    if request.kind == "turn" and result.status == "complete":
        result.answer = f"{result.answer.rstrip()}\n\n{ctx.config.footer}"
    return result


@plugin.on_startup
async def announce(ctx: PluginContext[Any]) -> None:
    log.info("house rules active: %d blocked word(s)", len(ctx.config.blocked_words))
