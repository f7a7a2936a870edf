"""``:command`` lines: the console's way to call the commands plugins define."""

from __future__ import annotations

from collections.abc import Sequence

from botkit.adapter import CommandSpec


def parse_command_line(line: str, specs: Sequence[CommandSpec]) -> tuple[str, dict[str, str], str]:
    """Split ``:name [sub] [key=value ...] free text`` into (qualified name, args, free text).

    ``key=value`` tokens at the start fill options by name; the rest of the line fills the first
    text option not given that way (so ``:math 2+2`` and ``:ask persona=legal Can I...`` work).
    """
    words = line[1:].strip().split(" ")
    name, rest = words[0], words[1:]
    groups = {s.group for s in specs if s.group}
    if name in groups and rest:
        name, rest = f"{name} {rest[0]}", rest[1:]
    spec = next((s for s in specs if s.qualified_name == name), None)
    args: dict[str, str] = {}
    option_names = {o.name for o in spec.options} if spec else set()
    while rest and "=" in rest[0] and rest[0].split("=", 1)[0] in option_names:
        key, value = rest.pop(0).split("=", 1)
        args[key] = value
    text = " ".join(rest).strip()
    if spec is not None and text:
        free = next((o for o in spec.options if o.name not in args), None)
        if free is not None:
            args[free.name] = text
    return name, args, text
