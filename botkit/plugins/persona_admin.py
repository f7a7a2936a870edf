"""``/persona list`` and ``/persona show``: what the admins who edit persona files need to see.

The list shows each persona's content hash (the same value stored with every turn), so an
admin can tell which version of a file answered, and any file that currently fails to load
together with the error; the previous good version keeps serving meanwhile.
"""

from __future__ import annotations

from typing import Any

from botkit.adapter import OptionSpec
from botkit.plugins.api import CommandContext, Plugin

plugin: Plugin[Any] = Plugin(
    "persona_admin", description="Persona administration (/persona list, /persona show)."
)


@plugin.command(
    "list", "List the loaded personas and any broken persona files", group="persona", admin_only=True
)
async def persona_list(ctx: CommandContext[Any]) -> None:
    lines = ["**Personas**"]
    for persona in ctx.personas.all():
        lines.append(f"- `{persona.name}` ({persona.content_hash}): {persona.description}")
    for error in ctx.personas.errors:
        lines.append(f"- ⚠️ {error}")
    await ctx.respond("\n".join(lines))


@plugin.command(
    "show",
    "Show a persona's settings and template",
    options=[OptionSpec("name", "Persona name", kind="persona")],
    group="persona",
    admin_only=True,
)
async def persona_show(ctx: CommandContext[Any]) -> None:
    name = ctx.args.get("name", ctx.message.text).strip()
    persona = ctx.personas.get(name)
    if persona is None:
        await ctx.respond(f"⚠️ No persona named {name!r}. Known: {', '.join(ctx.personas.names())}.")
        return
    text = persona.path.read_text(encoding="utf-8")
    await ctx.respond(
        f"**{persona.name}** ({persona.content_hash}) from `{persona.path.name}`\n```\n{text.strip()}\n```"
    )
