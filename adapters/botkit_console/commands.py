"""``:command`` lines: the console's way to call the commands plugins define."""

from __future__ import annotations

from collections.abc import Sequence

from botkit.adapter import CommandSpec
from botkit.commands import parse_command


def parse_command_line(line: str, specs: Sequence[CommandSpec]) -> tuple[str, dict[str, str], str]:
    """``:name [sub] [key=value ...] free text`` -> (qualified name, args, free text).

    ``:math 2+2`` and ``:ask persona=legal Can I...`` work as on Slack (see :mod:`botkit.commands`).
    """
    name, _, rest = line[1:].strip().partition(" ")
    parsed = parse_command(name, rest, specs)
    return parsed.name, parsed.args, parsed.text
