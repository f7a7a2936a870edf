"""``/ask``: a question to a chosen persona (autocompleted from those the user may use)."""

from __future__ import annotations

from typing import Any

from botkit.adapter import OptionSpec
from botkit.plugins.api import CommandContext, Plugin

plugin: Plugin[Any] = Plugin("ask", description="Ask a question, optionally of a chosen persona (/ask).")


@plugin.command(
    "ask",
    "Ask the model a question",
    options=[
        OptionSpec("question", "Your question"),
        OptionSpec("persona", "Which persona answers", required=False, kind="persona"),
    ],
)
async def ask_command(ctx: CommandContext[Any]) -> None:
    await ctx.converse(
        persona=ctx.args.get("persona") or None, question=ctx.args.get("question", ctx.message.text)
    )
