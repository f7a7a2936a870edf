"""The core's plugin commands on Slack: slash commands, and a keyword form in messages.

Every top-level name in ``host.commands`` (a command's name, or its group) is one Slack slash
command: ``/math 2+2``, ``/ask persona=legal Can I...``, ``/persona list``, ``/botkit status``.
The same commands can be written in a mention, a DM or a thread follow-up with the keyword
prefix (``slack.command_prefix``, default ``!``): ``@botkit !math 2+2``.

The text after the command is parsed like the console's ``:name`` lines: a group's first word
picks the subcommand, leading ``key=value`` tokens fill options by name, and the rest fills the
first option not given that way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from botkit.adapter import CommandSpec
from botkit.events import IncomingMessage


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    name: str  # qualified: "persona list"
    args: dict[str, str]
    text: str  # the free text (the command's main argument)


def top_level_names(specs: Sequence[CommandSpec]) -> list[str]:
    """The slash commands to register: each group once, and each ungrouped command."""
    names: list[str] = []
    for spec in specs:
        name = spec.group or spec.name
        if name not in names:
            names.append(name)
    return names


def parse_command(name: str, text: str, specs: Sequence[CommandSpec]) -> ParsedCommand:
    """``name`` (top level, without ``/``) and the text after it -> qualified name, args, free text."""
    rest = [w for w in text.strip().split(" ") if w]
    groups = {s.group for s in specs if s.group}
    if name in groups and rest:
        name, rest = f"{name} {rest[0]}", rest[1:]
    spec = next((s for s in specs if s.qualified_name == name), None)
    args: dict[str, str] = {}
    option_names = {o.name for o in spec.options} if spec else set()
    while rest and "=" in rest[0] and rest[0].split("=", 1)[0] in option_names:
        key, value = rest.pop(0).split("=", 1)
        args[key] = value
    free_text = " ".join(rest).strip()
    if spec is not None and free_text:
        free = next((o for o in spec.options if o.name not in args), None)
        if free is not None:
            args[free.name] = free_text
    return ParsedCommand(name, args, free_text)


def parse_slash(command: str, text: str, specs: Sequence[CommandSpec]) -> ParsedCommand:
    """A slash command payload's ``command`` (``/math``) and ``text``."""
    return parse_command(command.lstrip("/").strip(), text, specs)


def keyword_command(text: str, specs: Sequence[CommandSpec], prefix: str) -> ParsedCommand | None:
    """``!math 2+2`` (with ``prefix`` "!") -> the command; None if ``text`` is not one.

    Only a known top-level name counts, so ``!!! it broke`` stays an ordinary question.
    """
    if not prefix or not text.startswith(prefix):
        return None
    parts = text[len(prefix) :].split(None, 1)
    if not parts or parts[0].lower() not in top_level_names(specs):
        return None
    return parse_command(parts[0].lower(), parts[1] if len(parts) > 1 else "", specs)


def with_command(message: IncomingMessage, parsed: ParsedCommand) -> IncomingMessage:
    """``message`` as a command invocation (``command``, ``args``, free ``text``)."""
    return dataclasses.replace(message, command=parsed.name, args=parsed.args, text=parsed.text)
