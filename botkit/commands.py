"""Command text as users type it on keyword platforms: ``name [sub] [key=value ...] free text``.

One parser for every adapter that receives commands as text (console ``:math 2+2``, Slack
``/ask persona=legal Can I...`` or ``!math 2+2``): a group's first word picks the subcommand,
leading ``key=value`` tokens fill options by name, and the rest fills the first option not given
that way. Platforms with typed options (Discord) do not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from botkit.adapter import CommandSpec


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
