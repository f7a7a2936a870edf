"""``/persona list|show|history|diff|reload|check``: what the admins who edit persona files need.

Every answer is a notice (ephemeral on Slack and Discord): a persona's template and its history
are for the admin who asked, not for the channel. Every use is audited by the router, which
records each ``admin_only`` command before it runs.

The list shows each persona's content hash (the same value stored with every turn) and marks a
persona that serves an older version because its file is currently broken; ``history`` lists the
stored versions, ``show NAME HASH`` shows any of them and ``diff NAME OLD NEW`` compares two.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botkit.adapter import OptionSpec
from botkit.audit import VersionNotFound, history_lines, pick_version, version_diff
from botkit.personas import Persona, check_directory
from botkit.plugins.api import CommandContext, Plugin

plugin: Plugin[Any] = Plugin(
    "persona_admin",
    description="Persona administration (/persona list, show, history, diff, reload, check).",
)

NAME = OptionSpec("name", "Persona name", kind="persona")


def _words(ctx: CommandContext[Any], *options: str) -> list[str]:
    """The options' values as words: Discord fills each option, Slack and the console put
    ``show legal 3f2a`` into the first one as free text."""
    return " ".join(ctx.args.get(o, "") for o in options).split() or ctx.message.text.split()


async def _persona(ctx: CommandContext[Any], name: str) -> Persona | None:
    persona = ctx.personas.get(name)
    if persona is None:
        await ctx.respond(
            f"⚠️ No persona named {name!r}. Known: {', '.join(ctx.personas.names())}.", notice=True
        )
    return persona


@plugin.command(
    "list", "List the loaded personas and any broken persona files", group="persona", admin_only=True
)
async def persona_list(ctx: CommandContext[Any]) -> None:
    lines = ["**Personas**"]
    for persona in ctx.personas.all():
        line = f"- `{persona.name}` ({persona.content_hash}): {persona.description}"
        if ctx.personas.is_stale(persona.name):
            line += " — ⚠️ serving an older version: its file is broken (see below)"
        lines.append(line)
    for error in ctx.personas.errors:
        lines.append(f"- ⚠️ {error}")
    await ctx.respond("\n".join(lines), notice=True)


@plugin.command(
    "show",
    "Show a persona's settings and template (any stored version: give its hash)",
    options=[NAME, OptionSpec("version", "Hash (or its start) of a stored version", required=False)],
    group="persona",
    admin_only=True,
)
async def persona_show(ctx: CommandContext[Any]) -> None:
    words = _words(ctx, "name", "version")
    if not words:
        await ctx.respond("⚠️ Usage: /persona show NAME [HASH]", notice=True)
        return
    persona = await _persona(ctx, words[0])
    if persona is None:
        return
    ref = words[1] if len(words) > 1 else persona.content_hash
    try:
        version = pick_version(persona.name, await ctx.persona_versions(persona.name), ref)
    except VersionNotFound as err:
        if len(words) > 1:
            await ctx.respond(f"⚠️ {err}", notice=True)
            return
        shown, text = persona.content_hash, persona.path.read_text(encoding="utf-8")  # not stored yet
    else:
        shown, text = version.hash, version.text
    serving = " (serving)" if shown == persona.content_hash else ""
    await ctx.respond(
        f"**{persona.name}** ({shown}){serving} from `{persona.path.name}`\n```\n{text.strip()}\n```",
        notice=True,
    )


@plugin.command(
    "history",
    "List a persona's stored versions with the time each was first loaded",
    options=[NAME],
    group="persona",
    admin_only=True,
)
async def persona_history(ctx: CommandContext[Any]) -> None:
    words = _words(ctx, "name")
    persona = await _persona(ctx, words[0] if words else "")
    if persona is None:
        return
    versions = await ctx.persona_versions(persona.name)
    body = "\n".join(history_lines(versions, persona.content_hash)) or "no stored versions"
    await ctx.respond(f"**{persona.name}**: {len(versions)} version(s)\n```\n{body}\n```", notice=True)


@plugin.command(
    "diff",
    "Show what changed between two stored versions of a persona",
    options=[NAME, OptionSpec("old", "Hash of the older version"), OptionSpec("new", "Hash of the newer")],
    group="persona",
    admin_only=True,
)
async def persona_diff(ctx: CommandContext[Any]) -> None:
    words = _words(ctx, "name", "old", "new")
    if len(words) != 3:
        await ctx.respond("⚠️ Usage: /persona diff NAME OLD NEW (hashes or their start)", notice=True)
        return
    name, old_ref, new_ref = words
    versions = await ctx.persona_versions(name)
    try:
        old, new = pick_version(name, versions, old_ref), pick_version(name, versions, new_ref)
    except VersionNotFound as err:
        await ctx.respond(f"⚠️ {err}", notice=True)
        return
    diff = version_diff(name, old, new) or "(no difference)\n"
    await ctx.respond(f"```diff\n{diff}```", notice=True)


@plugin.command(
    "reload", "Reload the persona files now and report what changed", group="persona", admin_only=True
)
async def persona_reload(ctx: CommandContext[Any]) -> None:
    changed, errors = await ctx.personas.reload()
    lines = [f"**Reloaded**: {', '.join(f'`{n}`' for n in changed) or 'nothing changed'}"]
    lines += [f"- ⚠️ {error}" for error in errors]
    await ctx.respond("\n".join(lines), notice=True)


@plugin.command("check", "Validate the persona files without loading them", group="persona", admin_only=True)
async def persona_check(ctx: CommandContext[Any]) -> None:
    registry = ctx.personas
    personas, errors = await asyncio.to_thread(
        check_directory, registry.directory, extra_variables=registry.extra_variables
    )
    lines = [f"**{len(personas)} persona(s) ok, {len(errors)} error(s)**"]
    lines += [f"- ⚠️ {error}" for error in errors]
    await ctx.respond("\n".join(lines), notice=True)
