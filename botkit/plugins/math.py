"""``/math``: step-by-step math help with the math persona (its final answer shown prominently).

``/math`` always means the math persona, also in a channel bound to another one, unless that
binding says ``allow_commands = false`` (then the asker is told so, privately).
"""

from __future__ import annotations

from typing import Any

from botkit.adapter import OptionSpec
from botkit.plugins.api import CommandContext, Plugin

plugin: Plugin[Any] = Plugin("math", description="Step-by-step math help (/math).")


@plugin.command(
    "math",
    "Solve a math problem step by step",
    options=[OptionSpec("question", "The problem, e.g. 'What is 17*23?' or 'Solve x^2-5x+6=0'")],
)
async def math_command(ctx: CommandContext[Any]) -> None:
    await ctx.converse(persona="math", question=ctx.args.get("question", ctx.message.text), over_binding=True)
