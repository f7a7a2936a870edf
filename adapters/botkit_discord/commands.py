"""The slash-command tree, built from the commands the core's plugins declare.

Each :class:`~botkit.adapter.CommandSpec` becomes one ``app_commands.Command`` (inside an
``app_commands.Group`` when it has a group, so ``/persona list`` and ``/persona show`` are one
top-level command with subcommands). Options become string parameters; a ``persona`` option is
autocompleted with the personas the member may use here (``host.personas_for``). A command that
declares no options gets one optional ``text`` option, so the user can still type text after it
(as on Slack and the console) and its handler gets it as ``message.text``. Every command calls
the same ``invoke`` with the spec and its arguments: the adapter defers and submits.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Optional

import discord
from discord import app_commands

from botkit.adapter import AdapterHost, CommandSpec, OptionSpec
from botkit_discord.identity import channel_and_thread, member_roles, workspace_of

Invoke = Callable[[discord.Interaction[Any], CommandSpec, dict[str, str]], Awaitable[None]]

_DESCRIPTION_LIMIT = 100  # Discord's limit for command, option and choice texts
_CHOICES_LIMIT = 25
FREE_TEXT = OptionSpec("text", "Text for the command (optional)", required=False)


def shown_options(spec: CommandSpec) -> tuple[OptionSpec, ...]:
    """The options Discord offers: the declared ones, or the optional free text when none are."""
    return spec.options or (FREE_TEXT,)


def _short(text: str) -> str:
    text = " ".join(text.split()) or "…"
    return text if len(text) <= _DESCRIPTION_LIMIT else text[: _DESCRIPTION_LIMIT - 1] + "…"


def _callback(spec: CommandSpec, invoke: Invoke) -> Callable[..., Coroutine[Any, Any, None]]:
    """A coroutine whose signature tells discord.py the command's options (all strings)."""

    async def callback(interaction: discord.Interaction[Any], **values: str | None) -> None:
        args = {name: value for name, value in values.items() if value is not None}
        await invoke(interaction, spec, args)

    parameters = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    options = shown_options(spec)
    for option in options:
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=str if option.required else Optional[str],  # noqa: UP045 (runtime value)
                default=inspect.Parameter.empty if option.required else None,
            )
        )
    name = "botkit_" + spec.qualified_name.replace(" ", "_")
    callback.__name__ = callback.__qualname__ = name
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = {  # type: ignore[attr-defined]
        option.name: _short(option.description) for option in options
    }
    return callback


def persona_autocomplete(
    host: AdapterHost,
) -> Callable[[discord.Interaction[Any], str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]:
    """Autocomplete for a persona option: the personas this member may use in this channel."""

    async def complete(interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        channel, _ = channel_and_thread(interaction)
        allowed = host.personas_for(
            str(interaction.user.id),
            member_roles(interaction.user),
            channel,
            platform="discord",
            workspace=workspace_of(interaction.guild_id),
        )
        typed = current.strip().lower()
        choices = [
            app_commands.Choice(name=_short(f"{p.name} — {p.description}"), value=p.name)
            for p in allowed
            if typed in p.name.lower() or typed in p.description.lower()
        ]
        return choices[:_CHOICES_LIMIT]

    return complete


def app_command(spec: CommandSpec, host: AdapterHost, invoke: Invoke) -> app_commands.Command[Any, ..., None]:
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=spec.name, description=_short(spec.description), callback=_callback(spec, invoke)
    )
    for option in spec.options:
        if option.kind == "persona":
            command.autocomplete(option.name)(persona_autocomplete(host))
    return command


def build_tree(
    client: discord.Client, host: AdapterHost, specs: Sequence[CommandSpec], invoke: Invoke
) -> app_commands.CommandTree[discord.Client]:
    """One tree with every command (global definitions; the adapter copies them to guilds)."""
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    groups: dict[str, app_commands.Group] = {}
    for spec in specs:
        command = app_command(spec, host, invoke)
        if spec.group is None:
            tree.add_command(command)
            continue
        group = groups.get(spec.group)
        if group is None:
            group = groups[spec.group] = app_commands.Group(
                name=spec.group, description=_short(f"/{spec.group} commands")
            )
            tree.add_command(group)
        group.add_command(command)
    return tree


def main_text(spec: CommandSpec, args: dict[str, str]) -> str:
    """The command's free text (its first text option, or the ``text`` one Discord shows for a
    command that declares none), used as the message text."""
    options = shown_options(spec)
    first = next((o for o in options if o.kind == "text"), options[0])
    return args.get(first.name, "")


def declared_args(spec: CommandSpec, args: dict[str, str]) -> dict[str, str]:
    """The arguments of the options the command declares (not the added free text)."""
    names = {option.name for option in spec.options}
    return {name: value for name, value in args.items() if name in names}
